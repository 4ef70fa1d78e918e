"""Where Tuneboard keeps its files: one folder, ./workspace by default ($TUNEBOARD_WORKSPACE)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = "workspace"
MIN_FREE_GB = 1.0  # runs do not start, and downloads do not begin, below this much free disk


def min_free_gb() -> float:
    """The free disk to keep: $TUNEBOARD_MIN_FREE_GB, else MIN_FREE_GB (checkpoints and downloads fill disks)."""
    return float(os.environ.get("TUNEBOARD_MIN_FREE_GB", MIN_FREE_GB))


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
