"""Evaluations on the Ray cluster (`evaluate --executor ray`): each one a Ray job of its own running the same
process as a local evaluation (backend.evaluate.worker) with the CPUs and GPUs it asked for, side by side
with other jobs (the cluster queues what it has no room for yet; a local evaluation runs one at a time).

The supervisor's evaluation step (driver.py) submits every queued one to the workspace's cluster and
watches the running ones: the worker ends its evaluation itself; a job that ended without it doing so
(killed, its node lost) ends the evaluation as failed with the job's message. A silent cluster leaves
them waiting, as ray runs wait.

    options = cluster_options(workspace, worker_cpus=2, worker_gpus=1)    # checked before anything is queued
    advance_ray(database, workspace, live_evaluations)                    # the supervisor, every tick
"""

from __future__ import annotations

import logging
import shlex
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from backend.workspace import Workspace
from db import Database, Evaluation
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)

RAY = "ray"
EXECUTORS = ("local", RAY)


def cluster_options(
    workspace: Workspace, worker_cpus: float | None = None, worker_gpus: float | None = None
) -> dict[str, float]:
    """The Ray resources of an evaluation's job, checked with the cluster (configured and answering)."""
    from backend.runs import ray_jobs

    ray_jobs.require_ray()
    cpus = 1.0 if worker_cpus is None else float(worker_cpus)
    gpus = 0.0 if worker_gpus is None else float(worker_gpus)
    if cpus <= 0 or gpus < 0:
        raise ValueError("--worker-cpus must be above 0 and --worker-gpus 0 or more (the evaluation job's resources)")
    ray_jobs.answering_address(workspace)
    return {"worker_cpus": cpus, "worker_gpus": gpus}


def advance_ray(database: Database, workspace: Workspace, live: list[Evaluation]) -> None:
    """Submit the queued ray evaluations, and end the running ones whose job ended without their worker."""
    mine = [e for e in live if e.executor == RAY]
    if not mine:
        return
    from backend.runs import ray_jobs

    address = ray_jobs.configured_address(workspace) if ray_jobs.installed() else None
    if not address:
        log.warning("%d evaluation(s) wait for a Ray cluster: none is configured for this workspace", len(mine))
        return
    try:
        jobs = ray_jobs.client(address)
    except ValueError as e:
        log.warning("evaluations wait: %s", e)
        return
    for e in mine:
        if e.status == "queued":
            _submit(database, workspace, jobs, address, e)
        elif e.cluster_job_id:
            _watch(database, jobs, e)


def stop_job(workspace: Workspace, job_id: str) -> None:
    """Stop a cancelled evaluation's job at once (its worker would also stop at its next batch)."""
    from backend.runs import ray_jobs

    address = ray_jobs.configured_address(workspace)
    try:
        ray_jobs.client(address).stop_job(job_id)
    except Exception as e:  # a silent cluster: the worker sees the cancel itself when it can
        log.warning("stopping Ray job %s failed: %s", job_id, e)


def _submit(database: Database, workspace: Workspace, jobs: Any, address: str, e: Evaluation) -> None:
    from backend.runs.ray_jobs import job_env, job_python

    job_id = f"tuneboard-eval-{e.id}-{uuid.uuid4().hex[:8]}"
    with database.session() as s:  # claimed with its job id first: a restarted supervisor knows what to watch
        claimed = s.execute(
            update(Evaluation)
            .where(Evaluation.id == e.id, Evaluation.status == "queued")
            .values(status="running", started_at=utcnow(), attempts=Evaluation.attempts + 1, cluster_job_id=job_id)
        ).rowcount
    if not claimed:
        return
    resources = (e.options or {}).get("cluster") or {}
    command = [job_python(), "-m", "backend.evaluate.worker", str(e.id), "--workspace", str(workspace.root)]
    try:
        jobs.submit_job(
            entrypoint=shlex.join(command),
            submission_id=job_id,
            entrypoint_num_cpus=resources.get("worker_cpus", 1.0),
            entrypoint_num_gpus=resources.get("worker_gpus", 0.0),
            metadata={"tuneboard_workspace": str(workspace.root), "tuneboard_evaluation": str(e.id)},
            runtime_env={"env_vars": job_env()},
        )
    except Exception as error:
        _fail(database, e.id, f"its Ray job could not be submitted to {address}: {error}")
        return
    log.info("evaluation %s submitted to the Ray cluster at %s as %s", e.id, address, job_id)


def _watch(database: Database, jobs: Any, e: Evaluation) -> None:
    from backend.runs.ray_jobs import START_GRACE

    try:
        info = jobs.get_job_info(e.cluster_job_id)
    except Exception:  # not on the cluster (restarted?) or it does not answer now
        started = as_utc(e.started_at)
        if started and datetime.now(UTC) - started > START_GRACE:
            _fail(database, e.id, f"its Ray job {e.cluster_job_id} is not on the cluster (restarted?)")
        return
    if info.status.is_terminal():  # the worker ends its evaluation itself; still running here: it could not
        _fail(database, e.id, f"its Ray job {e.cluster_job_id} ended {info.status.value}: {info.message or ''}")


def _fail(database: Database, evaluation_id: int, reason: str) -> None:
    with database.session() as s:
        s.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id, Evaluation.status.in_(("queued", "running")))
            .values(status="failed", finished_at=utcnow(), reason=reason.strip(), eta_seconds=None)
        )
    log.warning("evaluation %s failed: %s", evaluation_id, reason)
