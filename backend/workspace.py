"""Where Tuneboard keeps its files: one folder, ./workspace by default ($TUNEBOARD_WORKSPACE)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = "workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        chosen = path or os.environ.get("TUNEBOARD_WORKSPACE") or DEFAULT_WORKSPACE
        root = Path(chosen).expanduser().resolve()
        for sub in ("datasets", "runs", "exports", "models"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def database_url(self) -> str:
        return os.environ.get("DATABASE_URL") or f"sqlite:///{self.root / 'tuneboard.db'}"

    def dataset_dir(self, dataset_id: int) -> Path:
        return self.root / "datasets" / str(dataset_id)

    def run_dir(self, run_id: int) -> Path:
        return self.root / "runs" / str(run_id)

    def export_dir(self, run_id: int) -> Path:
        return self.root / "exports" / str(run_id)

    @property
    def models_dir(self) -> Path:
        """Bundled models converted once; $TUNEBOARD_MODELS_DIR shares them between workspaces."""
        shared = os.environ.get("TUNEBOARD_MODELS_DIR")
        return Path(shared).expanduser().resolve() if shared else self.root / "models"
