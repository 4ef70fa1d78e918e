"""Runs as the UI and CLI change them: create (validated, queued), cancel, resume, prioritize, delete.

Every change is a conditional UPDATE/DELETE on the run's status, so a supervisor claiming or
ending the run at the same moment never races it. Reading runs lives in backend.runs.query.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, selectinload

from backend.alignment import DATA_TASK
from backend.config import NEEDS_VALIDATION, RunConfig
from backend.data.store import find_dataset
from backend.models.hub import HubRef
from backend.runs.files import checkpoint_steps
from backend.runs.query import EARLIER_SECONDS, RunQuery, curve, duration_seconds, list_page, summary
from backend.workspace import Workspace
from db import Database, Dataset, MetricPoint, Run, RunStatus

log = logging.getLogger(__name__)

RESUMABLE = (RunStatus.interrupted, RunStatus.failed, RunStatus.cancelled)
ACTIVE = (RunStatus.queued, RunStatus.running)


def create_run(
    database: Database,
    workspace: Workspace,
    cfg: RunConfig,
    name: str = "",
    *,
    priority: int = 0,
    study: tuple[int, int] | None = None,
    executor: str = "local",
    cluster: dict | None = None,
) -> Run:
    """Validate everything a user can get wrong, then queue the run. Nothing is written on error.

    `study` is (study id, trial number) for a hyperparameter search's trial; `executor` where its workers
    start: local (this machine's supervisor), slurm (a cluster's launcher, backend.runs.external) or ray (a Ray
    cluster's job; `cluster`: its workers, worker_cpus and worker_gpus, checked by backend.runs.ray_jobs)."""
    from backend.runs.external import check_executor
    from backend.runs.start import starting_point
    from backend.runs.supervisor import notify

    cfg = starting_point(database, workspace, cfg)  # from_run: a completed SFT run's model becomes `model`
    check_executor(executor)
    if executor == "ray":
        from backend.runs.ray_jobs import cluster_settings, write_resources

        cluster = cluster_settings(workspace, cluster or {}, cfg)
    ds, devices, pull = check_run(database, workspace, cfg)
    download = None
    if pull is not None:  # a hub model not on disk: the run waits in the queue while it downloads
        from backend.models.downloads import queue_download

        download = queue_download(database, pull)
    with database.session() as s:
        run = Run(
            name=name or _default_name(s, f"{cfg.method}-{ds.name}"),
            status=RunStatus.queued,
            task=cfg.task,
            model=cfg.model,
            method=cfg.method,
            dataset_id=ds.id,
            # the learning rate it trains with, not 0 for "the default": what Runs shows, compares and clones
            config={**cfg.to_dict(), "learning_rate": cfg.lr},
            metrics={},
            priority=int(priority),
            devices=devices,
            study_id=study[0] if study else None,
            trial_number=study[1] if study else None,
            download_id=download.id if download else None,
            executor=executor,
            workers=cluster["workers"] if executor == "ray" else cfg.world_size,
        )
        s.add(run)
        if executor == "ray":  # its workers' resources, in its folder before any supervisor sees the run
            s.flush()
            write_resources(workspace, run.id, cluster)
    if download is not None:
        from backend.models.downloads import release_if_done

        release_if_done(database, download.id)  # it may have ended between the two writes
    notify(workspace)  # the supervisor (this process's or an app's) starts it now, not on its next tick
    return run


def check_run(database: Database, workspace: Workspace, cfg: RunConfig) -> tuple[Dataset, str | None, HubRef | None]:
    """Everything create_run refuses, without writing: the dataset, the devices the run asks for, and the
    hub model to download first (None when the model is on disk)."""
    from backend.models.catalog import BUNDLED, require_installed, resolve_model
    from backend.models.hub import NotOnDisk, refuse_offline
    from backend.runs.supervisor import free_disk_problem

    if not cfg.dataset:
        raise ValueError("setting 'dataset' is empty; choose a dataset")
    from backend.runs.trackers import require_trackers

    require_trackers(cfg.trackers)  # a tracker whose client is missing: refused now, not when training starts
    ds = find_dataset(database, cfg.dataset)
    data_task = DATA_TASK.get(cfg.task, cfg.task)  # dpo trains on preference data, grpo on prompts ...
    if ds.task != data_task:
        fits = ", ".join(t for t, d in DATA_TASK.items() if d == ds.task) or ds.task
        raise ValueError(
            f"dataset '{ds.name}' is a {ds.task} dataset but the run's task is {cfg.task}; "
            f"choose a {data_task} dataset or set task to {fits}"
        )
    model_task = "sft" if cfg.task in DATA_TASK else cfg.task  # preference and RL tasks tune chat models
    if cfg.model in BUNDLED and BUNDLED[cfg.model].task != model_task:
        from backend.models.catalog import models_for

        raise ValueError(
            f"setting 'model': {cfg.model} is a {BUNDLED[cfg.model].task} model; for {cfg.task} choose "
            f"{', '.join(models_for(model_task))} or a local model folder"
        )
    _check_early_stopping(cfg, ds.splits)
    # The model before the devices: a wrong name is refused before torch is imported (about a second).
    pull = None
    if cfg.model in BUNDLED:
        require_installed(cfg.model)
    else:
        try:  # a bad path fails now, not in the worker
            resolve_model(cfg.model, workspace.models_dir, cfg.trust_remote_code)
        except NotOnDisk as e:
            pull = refuse_offline(e)  # offline: one line within seconds; else the run pulls it first
    devices = _requested_devices(cfg)
    if cfg.precision == "fp16":  # refused on a CPU; checked now, not in the worker (torch loads only here)
        from backend.devices import device_name, resolve_precision

        resolve_precision(cfg.precision, device_name())
    from backend.runs.preflight import preflight  # LoRA modules, freeze layers, QLoRA, GPUs: refused now

    if pull is None:  # a model still to download is checked by the worker
        preflight(cfg, workspace.models_dir)
        from backend.models.fit import check_fit

        check_fit(cfg, workspace.models_dir, (ds.stats or {}).get("max_chars"))  # refused with what to change
    disk = free_disk_problem(workspace)
    if disk:
        raise ValueError(disk)
    return ds, devices, pull


def _default_name(s: Session, base: str) -> str:
    """METHOD-DATASET, numbered from the second run on (lora-identity-2) past the highest number in use, so
    runs tell apart in every list, also after a delete. (Inside create_run's write transaction.)"""
    names = s.scalars(select(Run.name).where(or_(Run.name == base, Run.name.startswith(f"{base}-", autoescape=True))))
    numbers = [
        1 if n == base else int(m.group(1)) for n in names if n == base or (m := NUMBERED.fullmatch(n[len(base) :]))
    ]
    return f"{base}-{max(numbers) + 1}" if numbers else base


NUMBERED = re.compile(r"-(\d+)")


STOPPING_METRICS = {"sft": ("loss",)}  # what each task's evaluation reports during training
CLASSIFIER_METRICS = ("loss", "accuracy", "f1_macro", "precision_macro", "recall_macro")


def _check_early_stopping(cfg: RunConfig, splits: dict[str, int]) -> None:
    """Early stopping needs rows to evaluate on and a metric the evaluation reports: refused now, not in the worker."""
    if not cfg.early_stopping_patience:
        return
    held_out = splits.get("validation") or (cfg.val_ratio > 0 and splits.get("train", 0) >= 10)
    if not held_out:
        raise ValueError(NEEDS_VALIDATION)
    known = STOPPING_METRICS.get(cfg.task, CLASSIFIER_METRICS)
    if cfg.early_stopping_metric.removeprefix("eval_") not in known:
        raise ValueError(
            f"setting 'early_stopping_metric': {cfg.task} runs are evaluated on {', '.join(known)}, "
            f"not '{cfg.early_stopping_metric}'"
        )


def _requested_devices(cfg: RunConfig | dict) -> str | None:
    """The RunConfig's `devices` setting, checked against this machine: None means any free slot."""
    from backend.runs.slots import Slots, format_devices, parse_devices

    wanted = cfg.get("devices") if isinstance(cfg, dict) else getattr(cfg, "devices", None)
    devices = parse_devices(str(wanted)) if wanted is not None else None
    if devices is None:
        return None
    if devices != ["cpu"]:
        problem = Slots.detect().check(devices)
        if problem:
            raise ValueError(f"setting 'devices': {problem}")
    return format_devices(devices)


def _require(s: Session, run_id: int, *load) -> Run:
    run = s.get(Run, run_id, options=[selectinload(rel) for rel in load])
    if run is None:
        raise ValueError(f"run {run_id} not found; `runs list` shows the runs")
    return run


def get_run(database: Database, run_id: int) -> Run:
    """A run with its dataset and artifacts loaded, usable after the session closes."""
    with database.session() as s:
        return _require(s, run_id, Run.artifacts, Run.dataset)


def list_runs(database: Database, status: str | None = None, limit: int = 200, task: str | None = None) -> list[Run]:
    """The newest runs (optionally of one status and task): the dropdowns' short list."""
    return list_page(database, RunQuery(status=status or None, task=task or None, limit=limit)).runs


def cancel_run(database: Database, run_id: int, *, if_steps_left: bool = False) -> Run:
    """Queued runs end at once; a running one stops at its next step (the worker saves a checkpoint).

    `if_steps_left` (a search pruning a trial) asks a running run only while its worker has yet to
    write its last step: past that the run completes whatever is asked, so the ask is refused.
    """
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
            if if_steps_left:
                running &= Run.total_steps.is_(None) | (Run.step < Run.total_steps)
            first_ask = func.coalesce(Run.cancel_requested_at, now)  # asking twice keeps the first time
            changed = s.execute(update(Run).where(running).values(cancel_requested_at=first_ask)).rowcount
    with database.session() as s:
        run = _require(s, run_id)
        if not changed and run.status == RunStatus.running:
            raise ValueError(f"run {run_id} is at its last step ({run.step}/{run.total_steps}); it completes")
        if not changed:
            raise ValueError(f"run {run_id} is {run.status.value}; only queued or running runs can be cancelled")
        return run


def resume_run(database: Database, run_id: int, *, as_new: bool = False, workspace: Workspace | None = None) -> Run:
    """Queue an interrupted, failed or cancelled run again from its last checkpoint.

    `as_new` leaves the run as it is and queues a new run (parent_id = this run) that starts from
    a copy of its last checkpoint, with the curve so far, so it continues from the same step.
    """
    if as_new:
        if workspace is None:
            raise ValueError("resume as a new run needs the workspace")
        return _resume_as_new(database, workspace, run_id)
    with database.session() as s:
        run = _require(s, run_id)
        # The time already spent counts on: the run's duration is the sum of its segments.
        metrics = {**(run.metrics or {}), EARLIER_SECONDS: round(duration_seconds(run) or 0.0, 1)}
        again = s.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(RESUMABLE))
            .values(status=RunStatus.queued, pid=None, pid_started_at=None, cancel_requested_at=None, reason=None)
            .values(metrics=metrics)
            .values(finished_at=None, started_at=None, heartbeat_at=None, devices=_requested_devices(run.config))
        ).rowcount
        if not again:
            raise ValueError(f"run {run_id} is {run.status.value}; only interrupted, failed or cancelled runs resume")
    from backend.runs.supervisor import notify

    notify(workspace)
    return get_run(database, run_id)


def _resume_as_new(database: Database, workspace: Workspace, parent_id: int) -> Run:
    parent = get_run(database, parent_id)
    if parent.status not in RESUMABLE:
        raise ValueError(f"run {parent_id} is {parent.status.value}; only interrupted, failed or cancelled runs resume")
    found = checkpoint_steps(workspace.run_dir(parent_id) / "checkpoints")
    if not found:
        raise ValueError(f"run {parent_id} has no checkpoint to start from; resume it in place to start over")
    step, last = found[-1]
    with database.session() as s:
        child = Run(
            name=f"{parent.name} (from #{parent_id} @ {step})"[:200],
            status=RunStatus.queued,
            task=parent.task,
            model=parent.model,
            method=parent.method,
            dataset_id=parent.dataset_id,
            config=dict(parent.config),
            metrics={},
            priority=parent.priority,
            devices=_requested_devices(parent.config),
            parent_id=parent_id,
            step=step,
            total_steps=parent.total_steps,
            executor=parent.executor,  # where it trained, with its workers: a Ray run resumes on the cluster
            workers=parent.workers,
        )
        s.add(child)
        s.flush()
        # The curve up to the checkpoint, so the new run's curve continues from the same step.
        points = select(literal(child.id), MetricPoint.step, MetricPoint.name, MetricPoint.value).where(
            MetricPoint.run_id == parent_id, MetricPoint.step <= step
        )
        s.execute(insert(MetricPoint).from_select(["run_id", "step", "name", "value"], points))
        run_dir = workspace.run_dir(child.id)
        if run_dir.exists():
            raise ValueError(f"{run_dir} already exists (left from an earlier run?); move it away and try again")
        try:  # inside the transaction: no row without its checkpoint, no checkpoint without its row
            _link_tree(last, run_dir / "checkpoints" / last.name)
            _copy_resources(workspace, parent_id, child.id)
        except OSError:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
    from backend.runs.supervisor import notify

    notify(workspace)
    return get_run(database, child.id)


def _copy_resources(workspace: Workspace, parent_id: int, child_id: int) -> None:
    """A Ray run's workers and resources per worker (its folder's cluster.json) go with it when resumed as new."""
    from backend.runs.ray_jobs import RESOURCES_FILE

    source = workspace.run_dir(parent_id) / RESOURCES_FILE
    if source.is_file():
        shutil.copy2(source, workspace.run_dir(child_id) / RESOURCES_FILE)


def _link_tree(source: Path, target: Path) -> None:
    """Copy a checkpoint as hard links (instant, no extra disk); a real copy across file systems."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def set_priority(database: Database, run_id: int, priority: int) -> Run:
    """Change a queued run's priority (higher starts first)."""
    with database.session() as s:
        run = _require(s, run_id)
        changed = s.execute(
            update(Run).where(Run.id == run_id, Run.status == RunStatus.queued).values(priority=int(priority))
        ).rowcount
        if not changed:
            raise ValueError(f"run {run_id} is {run.status.value}; only a queued run's priority can change")
    return get_run(database, run_id)


def delete_run(database: Database, workspace: Workspace, run_id: int) -> dict[str, object]:
    """Delete a finished run: its row, metric points, artifact rows, run folder and export folder."""
    with database.session() as s:
        run = _require(s, run_id)
        gone = s.execute(delete(Run).where(Run.id == run_id, Run.status.not_in(ACTIVE))).rowcount
        if not gone:
            raise ValueError(f"run {run_id} is {run.status.value}; cancel it first, then delete it")
        s.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))  # the schema cascades too
    removed = []
    for folder in (workspace.run_dir(run_id), workspace.export_dir(run_id)):
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(str(folder))
    log.info("run %s deleted (%s)", run_id, ", ".join(removed) or "no files")
    return {"id": run_id, "deleted": True, "removed": removed}


__all__ = [
    "cancel_run",
    "create_run",
    "curve",
    "delete_run",
    "duration_seconds",
    "get_run",
    "list_runs",
    "resume_run",
    "set_priority",
    "summary",
]
