"""The services the UI, the CLI and the API share: one workspace and its database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from backend.workspace import Workspace
from db import Database

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IDENTITY_EXAMPLE = "identity-example"


@dataclass
class Services:
    workspace: Workspace
    database: Database

    @classmethod
    def open(cls, workspace: str | os.PathLike[str] | None = None) -> Services:
        ws = Workspace.resolve(workspace)
        return cls(ws, Database.open(ws.database_url))

    def ensure_examples(self) -> None:
        """Import the identity example once, so a first fine-tune needs no upload."""
        from backend.data import find_dataset, import_file

        try:
            find_dataset(self.database, IDENTITY_EXAMPLE)
        except ValueError:
            import_file(self.database, self.workspace, EXAMPLES / "identity.json", name=IDENTITY_EXAMPLE)
