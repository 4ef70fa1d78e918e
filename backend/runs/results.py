"""Where a finished run's model is: its base model folder and adapter, or its own full model folder."""

from __future__ import annotations

from pathlib import Path

from backend.models.catalog import resolve_model
from backend.runs.queue import get_run
from backend.workspace import Workspace
from db import Database, RunStatus


def model_folder(database: Database, workspace: Workspace, run_id: int) -> tuple[Path, Path | None, bool]:
    """(base model folder, adapter folder or None, whether the model's own code may run) for a
    completed run. The last is the user's choice for the run (`trust_remote_code`), never the folder's."""
    run = get_run(database, run_id)
    if run.status not in (RunStatus.completed, RunStatus.cancelled):
        raise ValueError(f"run {run_id} is {run.status.value}; only a completed run can be loaded")
    run_dir = workspace.run_dir(run_id)
    trusted = bool((run.config or {}).get("trust_remote_code"))
    if (run_dir / "adapter").is_dir():
        return resolve_model(run.model, workspace.models_dir, trusted), run_dir / "adapter", trusted
    if (run_dir / "model").is_dir():
        return run_dir / "model", None, trusted
    raise ValueError(f"run {run_id} has no saved model in {run_dir}")
