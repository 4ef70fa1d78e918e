"""Runs as the UI and CLI see them: create (validated, queued), list, show, cancel, curves, log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from backend.config import RunConfig
from backend.data.store import find_dataset
from backend.runfiles import log_tail
from backend.workspace import Workspace
from db import Database, MetricPoint, Run, RunStatus
from db.models import as_utc


def create_run(database: Database, workspace: Workspace, cfg: RunConfig, name: str = "") -> Run:
    """Validate everything a user can get wrong, then queue the run. Nothing is written on error."""
    from backend.catalog import BUNDLED, require_installed, resolve_model
    from backend.devices import device_name, resolve_precision

    if not cfg.dataset:
        raise ValueError("setting 'dataset' is empty; choose a dataset")
    ds = find_dataset(database, cfg.dataset)
    if cfg.precision == "fp16":  # refused on a CPU; checked now, not in the worker (torch loads only here)
        resolve_precision(cfg.precision, device_name())
    if cfg.model in BUNDLED:
        require_installed(cfg.model)
    else:
        resolve_model(cfg.model, workspace.models_dir)  # a bad path fails now, not in the worker
    with database.session() as s:
        run = Run(
            name=name or f"{cfg.method}-{ds.name}",
            status=RunStatus.queued,
            task=cfg.task,
            model=cfg.model,
            method=cfg.method,
            dataset_id=ds.id,
            config=cfg.to_dict(),
            metrics={},
        )
        s.add(run)
    return run


def _require(s: Session, run_id: int, *load) -> Run:
    run = s.get(Run, run_id, options=[selectinload(rel) for rel in load])
    if run is None:
        raise ValueError(f"run {run_id} not found; `runs list` shows the runs")
    return run


def get_run(database: Database, run_id: int) -> Run:
    """A run with its dataset and artifacts loaded, usable after the session closes."""
    with database.session() as s:
        return _require(s, run_id, Run.artifacts, Run.dataset)


def list_runs(database: Database, status: str | None = None, limit: int = 200) -> list[Run]:
    with database.session() as s:
        q = select(Run).options(selectinload(Run.dataset)).order_by(Run.id.desc()).limit(limit)
        if status:
            q = q.where(Run.status == RunStatus(status))
        return list(s.scalars(q))


def cancel_run(database: Database, run_id: int) -> Run:
    """Queued runs end at once; a running one stops at its next step (the worker saves a checkpoint)."""
    with database.session() as s:
        _require(s, run_id)
        # Conditional updates: the supervisor may claim a queued run at this very moment.
        now = datetime.now(UTC)
        queued = (Run.id == run_id) & (Run.status == RunStatus.queued)
        changed = s.execute(
            update(Run)
            .where(queued)
            .values(status=RunStatus.cancelled, finished_at=now, reason="cancelled before it started")
        ).rowcount
        if not changed:
            running = (Run.id == run_id) & (Run.status == RunStatus.running)
            first_ask = func.coalesce(Run.cancel_requested_at, now)  # asking twice keeps the first time
            changed = s.execute(update(Run).where(running).values(cancel_requested_at=first_ask)).rowcount
    with database.session() as s:
        run = _require(s, run_id)
        if not changed:
            raise ValueError(f"run {run_id} is {run.status.value}; only queued or running runs can be cancelled")
        return run


def resume_run(database: Database, run_id: int) -> Run:
    """Queue an interrupted, failed or cancelled run again; the worker continues from its last checkpoint."""
    with database.session() as s:
        run = _require(s, run_id)
        resumable = (RunStatus.interrupted, RunStatus.failed, RunStatus.cancelled)
        again = s.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(resumable))
            .values(status=RunStatus.queued, pid=None, pid_started_at=None, cancel_requested_at=None, reason=None)
            .values(finished_at=None)
        ).rowcount
        if not again:
            raise ValueError(f"run {run_id} is {run.status.value}; only interrupted, failed or cancelled runs resume")
    return get_run(database, run_id)


def curve(database: Database, run_id: int, name: str = "loss") -> list[tuple[int, float]]:
    with database.session() as s:
        rows = s.execute(
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.run_id == run_id, MetricPoint.name == name)
            .order_by(MetricPoint.step)
        )
        return [(int(step), float(value)) for step, value in rows]


def duration_seconds(run: Run) -> float | None:
    if run.started_at is None:
        return None
    end = as_utc(run.finished_at) or datetime.now(UTC)
    return round((end - as_utc(run.started_at)).total_seconds(), 1)


def summary(run: Run, workspace: Workspace | None = None, *, detail: bool = False) -> dict[str, Any]:
    """The JSON shape of a run for the CLI and API (`detail` adds config, artifacts and log tail)."""
    out: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "status": run.status.value,
        "task": run.task,
        "model": run.model,
        "method": run.method,
        "dataset": run.dataset.name if run.dataset else None,
        "step": run.step,
        "total_steps": run.total_steps,
        "progress": round(run.step / run.total_steps, 4) if run.total_steps else 0.0,
        "final_loss": (run.metrics or {}).get("final_loss"),
        "duration_seconds": duration_seconds(run),
        "created_at": _iso(run.created_at),
    }
    if detail:
        out.update(
            config=run.config,
            metrics=run.metrics,
            reason=run.reason,
            pid=run.pid,
            epoch=run.epoch,
            started_at=_iso(run.started_at),
            finished_at=_iso(run.finished_at),
            eta_seconds=(run.metrics or {}).get("eta_seconds") if run.status == RunStatus.running else None,
            artifacts=[
                {"id": a.id, "kind": a.kind, "path": a.path, "size_bytes": a.size_bytes, "verification": a.verification}
                for a in run.artifacts
            ],
        )
        if workspace is not None:
            out["log_tail"] = log_tail(workspace.run_dir(run.id))
    return out


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None
