"""Experiment trackers a run reports to (the Trainer's own `report_to` integrations) and where it lies in each.

    where = prepare(cfg, run_id, run_name, workspace)   # the worker, before the Trainer is built
    Trainer(..., callbacks=[TrackerLinks(where, cfg, run_dir)])  # backend.runs.callbacks: notes the run ids
    locations(run_dir)  # {"tensorboard": {"log_dir": ...}, "mlflow": {"tracking_uri": ..., "run_id": ...}}

Defaults keep everything on this machine and offline: TensorBoard event files in the run folder, MLflow in
workspace/mlflow.db (sqlite), W&B offline in the run folder unless WANDB_API_KEY is set, Trackio's local
database in workspace/trackio. A team points them elsewhere with the trackers' own variables (MLFLOW_TRACKING_URI,
MLFLOW_EXPERIMENT_NAME, WANDB_PROJECT, WANDB_MODE, TRACKIO_PROJECT ...), which are left as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from backend.config import RunConfig
from backend.workspace import Workspace

log = logging.getLogger(__name__)

LOCATIONS = "trackers.json"  # in the run folder: what the Runs page and `runs show` link to
EXPERIMENT = "tuneboard"  # MLflow experiment / W&B and Trackio project unless the environment names one


def prepare(cfg: RunConfig, run_id: int, run_name: str, workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Set each chosen tracker's defaults in this process's environment; returns where each one logs."""
    run_dir = workspace.run_dir(run_id)
    where: dict[str, dict[str, Any]] = {}
    if "tensorboard" in cfg.trackers:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")
        where["tensorboard"] = {"log_dir": os.environ["TENSORBOARD_LOGGING_DIR"]}
    if "mlflow" in cfg.trackers:
        if "MLFLOW_TRACKING_URI" not in os.environ:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workspace.root / 'mlflow.db'}"
            os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
            _local_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"], workspace)
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        tags = {"run_id": str(run_id), "task": cfg.task, "model": cfg.model, "method": cfg.method}
        tags["dataset"] = cfg.dataset
        os.environ["MLFLOW_TAGS"] = json.dumps({f"tuneboard.{k}": v for k, v in tags.items()})
        where["mlflow"] = {
            "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
            "experiment": os.environ["MLFLOW_EXPERIMENT_NAME"],
        }
    if "wandb" in cfg.trackers:
        os.environ.setdefault("WANDB_PROJECT", EXPERIMENT)
        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")  # no account: files in the run folder, `wandb sync` later
        os.environ.setdefault("WANDB_DIR", str(run_dir))
        where["wandb"] = {"project": os.environ["WANDB_PROJECT"], "mode": os.environ.get("WANDB_MODE", "online")}
    if "trackio" in cfg.trackers:
        os.environ.setdefault("TRACKIO_PROJECT", EXPERIMENT)
        os.environ.setdefault("TRACKIO_DIR", str(workspace.root / "trackio"))  # local: no Space unless one is named
        where["trackio"] = {"project": os.environ["TRACKIO_PROJECT"], "dir": os.environ["TRACKIO_DIR"]}
    for place in where.values():
        place["run_name"] = run_name
    return where


def _local_experiment(name: str, workspace: Workspace) -> None:
    """The workspace's MLflow experiment, its artifacts in workspace/mlartifacts (MLflow's default is ./mlruns
    under the worker's working directory, the source tree)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    if client.get_experiment_by_name(name) is None:
        with contextlib.suppress(MlflowException):  # another run created it meanwhile
            client.create_experiment(name, artifact_location=(workspace.root / "mlartifacts").as_uri())


PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb", "trackio": "trackio"}


def require_trackers(trackers: list[str]) -> None:
    """Refuse, when the run is queued, a tracker whose client is not installed (the Trainer would fail later)."""
    import importlib.util

    missing = [t for t in trackers if importlib.util.find_spec(PACKAGES[t]) is None]
    if missing:
        raise ValueError(
            f"setting 'report_to': {', '.join(missing)} is not installed here; "
            f"`pip install {' '.join(PACKAGES[t] for t in missing)}` or leave it out of report_to"
        )


def locations(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Where a run is in each tracker it reported to ({} when none)."""
    try:
        return json.loads((run_dir / LOCATIONS).read_text())
    except (OSError, ValueError):
        return {}
