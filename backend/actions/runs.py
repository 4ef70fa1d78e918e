"""Run actions: train (queue; with `wait`, run to the end), the time estimate, list, show, cancel, resume,
delete, priority, compare."""

from __future__ import annotations

import functools
from typing import Any

from backend.actions.waiting import queue_and_wait, supervise_until
from backend.config import RunConfig
from backend.services import Services


def train(
    services: Services, settings: dict[str, Any], name: str = "", wait: bool = False, timeout: float | None = None
) -> dict[str, Any]:
    """Queue a run; with `wait`, return when it ends (supervising it here if no app is running).
    settings["executor"] (not a RunConfig setting): local, slurm for workers a cluster's launcher starts, or ray
    for a job on a Ray cluster, with settings["workers"], ["worker_cpus"], ["worker_gpus"] (backend.runs.ray_jobs)."""
    from backend.compress import distill_settings
    from backend.runs.queue import create_run

    settings = dict(settings)
    executor = str(settings.pop("executor", None) or "local")
    cluster = {k: settings.pop(k) for k in ("workers", "worker_cpus", "worker_gpus") if k in settings}
    if cluster and executor != "ray":
        raise ValueError("--workers, --worker-cpus and --worker-gpus are for --executor ray (here: --nproc, --devices)")
    if wait and executor != "local":
        raise ValueError(f"--wait supervises the run here; a {executor} run starts on the cluster: drop --wait")
    settings = distill_settings(services.database, services.workspace, with_dataset_task(services, settings))
    cfg = RunConfig.from_dict(settings)
    queue = functools.partial(
        create_run, services.database, services.workspace, cfg, name=name, executor=executor, cluster=cluster
    )
    if not wait:
        return run_summary(services, queue().id)
    return show_run(services, queue_and_wait(services, queue, timeout).id)


def estimate(services: Services, settings: dict[str, Any], measure: bool = False) -> dict[str, Any]:
    """How long a run of these settings would train here: steps x seconds per step measured on this machine
    (by a run of the same shape, or a calibration). `measure`: calibrate when nothing was measured yet."""
    from backend.runs.estimate import calibrate, estimate

    cfg = RunConfig.from_dict(with_dataset_task(services, settings))
    if not cfg.dataset:
        raise ValueError("setting 'dataset' is missing: the estimate counts the steps over its rows")
    out = estimate(services.database, services.workspace, cfg)
    if measure and out["sec_per_step"] is None:
        out = calibrate(services.database, services.workspace, cfg)
    return out


def with_dataset_task(services: Services, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings whose task, when not given, is the dataset's (a text-classification dataset trains a
    classifier without --task); a dataset that does not exist is left for create_run to refuse."""
    if settings.get("task") or not settings.get("dataset"):
        return settings
    from backend.data import find_dataset

    try:
        return {**settings, "task": find_dataset(services.database, settings["dataset"]).task}
    except ValueError:
        return settings


def list_runs(
    services: Services,
    status: str | None = None,
    *,
    task: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    search: str = "",
    sort: str = "newest",
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One page of runs (newest first by default), filtered and searched in the database."""
    from backend.runs.query import RunQuery, list_page, summary

    q = RunQuery(status or None, task or None, model or None, dataset or None, search or "", sort, limit, offset)
    page = list_page(services.database, q)
    return [summary(r, positions=page.positions) for r in page.runs]


def run_summary(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import get_run, summary

    return summary(get_run(services.database, run_id), database=services.database)


def show_run(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import get_run, summary

    run = get_run(services.database, run_id)
    out = summary(run, services.workspace, detail=True, database=services.database)
    if run.executor == "ray":  # the tail of its job's log on the cluster (Ray Train's driver and workers)
        from backend.runs.ray_jobs import job_log_tail

        out["cluster_log_tail"] = job_log_tail(services.workspace, run)
    return out


def cancel_run(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import cancel_run

    cancel_run(services.database, run_id)
    return run_summary(services, run_id)


def resume_run(
    services: Services, run_id: int, wait: bool = False, timeout: float | None = None, as_new: bool = False
) -> dict[str, Any]:
    """Queue a stopped run again; it continues from its last checkpoint (its curve goes on from there).

    `as_new` queues a new run (parent_id = run_id) starting from a copy of that checkpoint instead.
    """
    from backend.runs.queue import resume_run

    run_id = resume_run(services.database, run_id, as_new=as_new, workspace=services.workspace).id
    if wait:
        supervise_until(services, run_id, timeout)
    return show_run(services, run_id) if wait else run_summary(services, run_id)


def delete_run(services: Services, run_id: int) -> dict[str, Any]:
    """Delete a finished run with its files (refused while it is queued or running)."""
    from backend.runs.queue import delete_run

    return delete_run(services.database, services.workspace, run_id)


def set_priority(services: Services, run_id: int, priority: int) -> dict[str, Any]:
    """Change a queued run's priority (higher starts first); returns it with its queue position."""
    from backend.runs.queue import set_priority

    set_priority(services.database, run_id, priority)
    return run_summary(services, run_id)


def compare_runs(services: Services, run_ids: list[int]) -> dict[str, Any]:
    """2-5 runs side by side: settings that differ, final metrics, and every curve."""
    from backend.runs.query import compare

    return compare(services.database, run_ids)
