"""Reading runs: a filtered, sorted page of the list, queue positions, curves, the JSON shape, compare.

Every list is one server-side query with LIMIT/OFFSET over indexed columns, so the Runs tab and
`runs list` stay fast with tens of thousands of runs; nothing loads all rows.

    page = list_page(database, RunQuery(status="running", search="identity", limit=50))
    page.total, [summary(r, positions=page.positions) for r in page.runs]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, defer, selectinload

from backend.runs.files import checkpoint_steps, dir_size, log_tail
from backend.runs.trackers import locations
from backend.workspace import Workspace
from db import Database, Dataset, Download, MetricPoint, Run, RunStatus
from db.models import as_utc

Sort = Literal["newest", "oldest", "name", "status", "model", "priority", "final_loss"]
SORTS: tuple[str, ...] = ("newest", "oldest", "name", "status", "model", "priority", "final_loss")
MAX_PAGE = 500
MAX_COMPARE = 5


@dataclass
class RunQuery:
    """What the list shows: filters (exact), a free-text search, a sort and a page."""

    status: str | None = None
    task: str | None = None
    model: str | None = None
    dataset: str | None = None
    search: str = ""
    sort: Sort = "newest"
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status and self.status not in RunStatus.__members__:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(RunStatus.__members__)}")
        if self.sort not in SORTS:
            raise ValueError(f"sort {self.sort!r} is not one of {', '.join(SORTS)}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if self.offset < 0:
            raise ValueError("offset must be 0 or more")


@dataclass
class RunPage:
    runs: list[Run]
    total: int
    positions: dict[int, int] = field(default_factory=dict)  # queue position of each queued run on the page


def _where(q: RunQuery) -> list:
    conds = []
    if q.status:
        conds.append(Run.status == RunStatus(q.status))
    if q.task:
        conds.append(Run.task == q.task)
    if q.model:
        conds.append(Run.model == q.model)
    if q.dataset:
        conds.append(Run.dataset.has(Dataset.name == q.dataset))
    text = q.search.strip()
    if text:
        like = f"%{text}%"
        matches = [Run.name.ilike(like), Run.model.ilike(like), Run.dataset.has(Dataset.name.ilike(like))]
        if text.lstrip("#").isdigit():
            matches.append(Run.id == int(text.lstrip("#")))
        conds.append(or_(*matches))
    return conds


def _order(sort: str) -> list:
    final_loss = Run.metrics["final_loss"].as_float()
    return {
        "newest": [Run.id.desc()],
        "oldest": [Run.id],
        "name": [Run.name, Run.id.desc()],
        "status": [Run.status, Run.id.desc()],
        "model": [Run.model, Run.id.desc()],
        "priority": [Run.priority.desc(), Run.id],
        "final_loss": [final_loss.is_(None), final_loss, Run.id.desc()],
    }[sort]


def list_page(database: Database, q: RunQuery) -> RunPage:
    """One page of runs matching `q`, the number matching in all, and the queue positions on it."""
    conds = _where(q)
    with database.session() as s:
        total = s.scalar(select(func.count(Run.id)).where(*conds)) or 0
        rows = list(
            s.scalars(
                select(Run)
                .options(defer(Run.config), selectinload(Run.dataset))
                .where(*conds)
                .order_by(*_order(q.sort))
                .limit(q.limit)
                .offset(q.offset)
            )
        )
        positions = {r.id: _position(s, r) for r in rows if r.status == RunStatus.queued}
    return RunPage(rows, total, positions)


def _position(s: Session, run: Run) -> int:
    """1 for the next run to start: higher priority first, then the older run."""
    ahead = s.scalar(
        select(func.count(Run.id)).where(
            Run.status == RunStatus.queued,
            or_(Run.priority > run.priority, and_(Run.priority == run.priority, Run.id < run.id)),
        )
    )
    return int(ahead or 0) + 1


def queue_position(database: Database, run: Run) -> int | None:
    if run.status != RunStatus.queued:
        return None
    with database.session() as s:
        return _position(s, run)


def distinct_values(database: Database, column: str, limit: int = 200) -> list[str]:
    """Values for a filter dropdown: the models, tasks or dataset names that runs use."""
    col = {"model": Run.model, "task": Run.task, "dataset": Dataset.name}[column]
    q = select(col).distinct().order_by(col).limit(limit)
    if column == "dataset":
        q = q.join(Run, Run.dataset_id == Dataset.id)
    with database.session() as s:
        return [v for v in s.scalars(q) if v]


def curve(database: Database, run_id: int, name: str = "loss") -> list[tuple[int, float]]:
    with database.session() as s:
        rows = s.execute(
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.run_id == run_id, MetricPoint.name == name)
            .order_by(MetricPoint.step)
        )
        return [(int(step), float(value)) for step, value in rows]


def curve_names(database: Database, run_ids: list[int]) -> list[str]:
    """The metric names recorded for these runs (loss first), e.g. loss, learning_rate, eval_loss."""
    with database.session() as s:
        names = set(s.scalars(select(MetricPoint.name).where(MetricPoint.run_id.in_(run_ids)).distinct()))
    return sorted(names, key=lambda n: (n != "loss", n.startswith("train_"), n))


def curves(database: Database, run_ids: list[int], names: list[str] | None = None) -> dict[str, dict[int, list]]:
    """{metric: {run_id: [[step, value], ...]}} for the given runs (all their metrics unless `names`)."""
    q = select(MetricPoint.run_id, MetricPoint.name, MetricPoint.step, MetricPoint.value).where(
        MetricPoint.run_id.in_(run_ids)
    )
    if names:
        q = q.where(MetricPoint.name.in_(names))
    out: dict[str, dict[int, list]] = {}
    with database.session() as s:
        for run_id, name, step, value in s.execute(q.order_by(MetricPoint.run_id, MetricPoint.name, MetricPoint.step)):
            out.setdefault(name, {}).setdefault(run_id, []).append([int(step), float(value)])
    return out


EARLIER_SECONDS = "earlier_seconds"  # a resumed run's time before its latest start (a key of Run.metrics)


# A worker found dead is marked when the supervisor notices, which may be hours later (the app was down):
# its time ends at its last heartbeat, plus one beat's slack.
HEARTBEAT_SLACK = timedelta(seconds=10)


def duration_seconds(run: Run) -> float | None:
    """Time the run has trained, over all its starts: a resumed run counts the time before too."""
    earlier = float((run.metrics or {}).get(EARLIER_SECONDS) or 0.0)
    if run.started_at is None:
        return round(earlier, 1) if earlier else None
    end = as_utc(run.finished_at) or datetime.now(UTC)
    if run.status in (RunStatus.interrupted, RunStatus.failed) and run.heartbeat_at is not None:
        end = min(end, as_utc(run.heartbeat_at) + HEARTBEAT_SLACK)
    return round(earlier + max(0.0, (end - as_utc(run.started_at)).total_seconds()), 1)


def summary(
    run: Run,
    workspace: Workspace | None = None,
    *,
    detail: bool = False,
    positions: dict[int, int] | None = None,
    database: Database | None = None,
) -> dict[str, Any]:
    """The JSON shape of a run for the CLI and API (`detail` adds config, metrics, artifacts, log tail)."""
    metrics = run.metrics or {}
    position = (positions or {}).get(run.id)
    if position is None and database is not None:
        position = queue_position(database, run)
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
        "final_loss": metrics.get("final_loss"),
        "duration_seconds": duration_seconds(run),
        "created_at": _iso(run.created_at),
        "priority": run.priority,
        "queue_position": position,
        "parent_id": run.parent_id,
        "download_id": run.download_id,  # set while the run waits for its model to download
        "study_id": run.study_id,  # a hyperparameter search's trial: its search and trial number
        "trial_number": run.trial_number,
    }
    if detail:
        out.update(
            config=run.config,
            metrics=metrics,
            reason=run.reason,
            pid=run.pid,
            devices=run.devices,
            executor=run.executor,  # where it trains: local (this machine) or ray (a cluster)
            cluster_job_id=run.cluster_job_id,
            workers=run.workers,
            epoch=run.epoch,
            started_at=_iso(run.started_at),
            finished_at=_iso(run.finished_at),
            heartbeat_at=_iso(run.heartbeat_at),
            cancel_requested=run.cancel_requested_at is not None,
            eta_seconds=metrics.get("eta_seconds") if run.status == RunStatus.running else None,
            wait_seconds=_wait_seconds(run),
            artifacts=[
                {"id": a.id, "kind": a.kind, "path": a.path, "size_bytes": a.size_bytes, "verification": a.verification}
                for a in run.artifacts
            ],
        )
        if run.download_id is not None and database is not None:
            out["download"] = _download(database, run.download_id)
        if workspace is not None:
            out["checkpoints"] = checkpoints(workspace, run.id)
            out["log_tail"] = log_tail(workspace.run_dir(run.id))
            out["trackers"] = locations(workspace.run_dir(run.id))  # where it is in TensorBoard, MLflow ...
    return out


def checkpoints(workspace: Workspace, run_id: int) -> list[dict[str, Any]]:
    """The run's complete checkpoints on disk, oldest first (the Trainer keeps the last save_total_limit)."""
    found = checkpoint_steps(workspace.run_dir(run_id) / "checkpoints")
    return [{"step": step, "path": str(p), "size_bytes": dir_size(p)} for step, p in found]


def _download(database: Database, download_id: int) -> dict[str, Any] | None:
    """Where the download a queued run waits for stands (as `models downloads` shows it)."""
    from backend.models.downloads import summary as download_summary

    with database.session() as s:
        d = s.get(Download, download_id)
        return download_summary(d) if d is not None else None


def _wait_seconds(run: Run) -> float | None:
    """Time the run spent queued before it first started (unknown once it was resumed: its start is the latest)."""
    if run.started_at is None or run.created_at is None or (run.metrics or {}).get(EARLIER_SECONDS):
        return None
    return round(max(0.0, (as_utc(run.started_at) - as_utc(run.created_at)).total_seconds()), 1)


class RunsNotFound(ValueError):
    """Runs asked for by id that do not exist (deleted, or never made); `missing` holds their ids."""

    def __init__(self, missing: list[int]):
        super().__init__(f"run(s) {', '.join(map(str, missing))} not found; `runs list` shows the runs")
        self.missing = missing


def compare(database: Database, run_ids: list[int]) -> dict[str, Any]:
    """2-5 runs side by side: summaries, the settings that differ, final metrics and all curves."""
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise ValueError(f"compare takes 2 to {MAX_COMPARE} different run ids; got {len(ids)}")
    with database.session() as s:
        found = {r.id: r for r in s.scalars(select(Run).options(selectinload(Run.dataset)).where(Run.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise RunsNotFound(missing)
    runs = [found[i] for i in ids]
    keys = sorted({k for r in runs for k in (r.config or {})})
    config = {k: [(r.config or {}).get(k) for r in runs] for k in keys}
    metric_keys = sorted({k for r in runs for k, v in (r.metrics or {}).items() if isinstance(v, int | float | str)})
    return {
        "runs": [summary(r) for r in runs],
        "config_diff": {k: v for k, v in config.items() if any(x != v[0] for x in v)},
        "config_same": {k: v[0] for k, v in config.items() if all(x == v[0] for x in v)},
        "metrics": {k: [(r.metrics or {}).get(k) for r in runs] for k in metric_keys},
        "curves": {name: {str(i): pts for i, pts in by_run.items()} for name, by_run in curves(database, ids).items()},
    }


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None
