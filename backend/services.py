"""The services the UI, the CLI and the API share: one workspace and its database."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from backend.workspace import Workspace
from db import Database

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
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

    def convert_default_model_in_background(self) -> subprocess.Popen | None:
        """Convert the bundled default model (~20 s, once) while the person looks at the page.

        A separate process, so the app never holds the model in memory; a run that starts meanwhile
        waits on the same file lock. Failures are left to the worker, which reports them on the run.
        """
        from backend.config import DEFAULT_MODEL
        from backend.models.catalog import is_materialized

        if is_materialized(DEFAULT_MODEL, self.workspace.models_dir):
            return None
        cmd = [sys.executable, "-m", "backend.models.catalog", DEFAULT_MODEL, str(self.workspace.models_dir)]
        self.workspace.models_dir.mkdir(parents=True, exist_ok=True)
        with open(self.workspace.models_dir / "convert.log", "ab") as log:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
