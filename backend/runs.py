"""Runs as the UI and CLI see them: create (validated, queued), list, show, cancel, curves, log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from backend.config import RunConfig
from backend.data.store import find_dataset
from backend.worker import log_tail
from backend.workspace import Workspace
from db import Database, MetricPoint, Run, RunStatus


def create_run(database: Database, workspace: Workspace, cfg: RunConfig, name: str = "") -> Run:
    """Validate everything a user can get wrong, then queue the run. Nothing is written on error."""
    from backend.catalog import BUNDLED, resolve_model

    if not cfg.dataset:
        raise ValueError("setting 'dataset' is empty; choose a dataset")
    ds = find_dataset(database, cfg.dataset)
    if cfg.model not in BUNDLED:
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
        run = _require(s, run_id)
        if run.status == RunStatus.queued:
            run.status = RunStatus.cancelled
            run.finished_at = datetime.now(UTC)
            run.reason = "cancelled before it started"
        elif run.status == RunStatus.running:
            run.cancel_requested_at = run.cancel_requested_at or datetime.now(UTC)
        else:
            raise ValueError(f"run {run_id} is {run.status.value}; only queued or running runs can be cancelled")
        return run


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
    end = run.finished_at or datetime.now(UTC)
    start = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return round((end - start).total_seconds(), 1)


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
    return value.isoformat() if value else None
