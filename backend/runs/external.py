"""Runs whose workers a cluster's launcher starts, not this machine's supervisor (runs.executor).

`local` runs are started and watched by the supervisor (processes, torchrun on this host). A `slurm`
run waits in the queue until `python -m backend.runs.worker RUN_ID --claim` starts on the cluster's
nodes (sbatch + srun + torchrun, backend.runs.launch.node_command, docs/multinode.md); the first
worker claims it, and from then on the supervisor only watches its heartbeat (its pids live on
other machines).

    claim(database, run_id, world_size=4)    # in each worker; the first one marks the run running
"""

from __future__ import annotations

from sqlalchemy import update

from db import Database, Run, RunStatus
from db.models import utcnow

EXECUTORS = ("local", "slurm", "ray")  # where a run's workers start (ray: backend.runs.ray_jobs submits its job)
LOCAL = "local"


def check_executor(executor: str) -> str:
    if executor not in EXECUTORS:
        raise ValueError(f"setting 'executor': {executor!r} is not one of {', '.join(EXECUTORS)}")
    return executor


def claim(database: Database, run_id: int, world_size: int) -> bool:
    """Mark a queued cluster run running with its number of workers; False when another worker (or an
    earlier start) already did. A local run is never claimed here: its supervisor starts it."""
    now = utcnow()
    with database.session() as s:
        return bool(
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.queued, Run.executor != LOCAL)
                .values(status=RunStatus.running, started_at=now, heartbeat_at=now, workers=world_size)
            ).rowcount
        )
