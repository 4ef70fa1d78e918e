"""The supervisor's step for evaluations (backend/runs/kinds.py names `advance_evaluations`).

One evaluation process at a time on this machine (they share the cores with training): the oldest
queued one starts when none runs. A running one whose process is gone (killed, a reboot) goes back to the
queue and its new process continues after the last (model, suite) it finished; after ATTEMPTS starts it
fails. Those for the Ray cluster are jobs there, side by side (backend/evaluate/cluster.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from backend.processes import spawn_job
from backend.workspace import Workspace
from db import Database, Evaluation
from db.models import utcnow

log = logging.getLogger(__name__)

LIVE = ("queued", "running")
ATTEMPTS = 3


def advance_evaluations(database: Database, workspace: Workspace) -> None:
    from backend.evaluate.cluster import RAY, advance_ray
    from backend.processes import is_alive, process_start_time

    with database.session() as s:
        live = list(s.scalars(select(Evaluation).where(Evaluation.status.in_(LIVE)).order_by(Evaluation.id)))
    advance_ray(database, workspace, live)  # those on the Ray cluster: jobs side by side (cluster.py)
    live = [e for e in live if e.executor != RAY]
    running = [e for e in live if e.status == "running"]
    for e in running:
        if e.pid is not None and not is_alive(e.pid, e.pid_started_at):
            _requeue_or_fail(database, e)
            running.remove(e)
    queued = [e for e in live if e.status == "queued"]
    if not running and queued:
        _start(database, workspace, queued[0].id, process_start_time)


def _requeue_or_fail(database: Database, e: Evaluation) -> None:
    values = (
        {"status": "queued", "pid": None}
        if e.attempts < ATTEMPTS
        else {"status": "failed", "finished_at": utcnow(), "reason": f"its process ended {e.attempts} times"}
    )
    with database.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id, Evaluation.status == "running").values(**values))
    log.warning("evaluation %s: its process %s is gone; %s", e.id, e.pid, values["status"])


def _start(database: Database, workspace: Workspace, evaluation_id: int, start_time) -> None:
    with database.session() as s:
        claimed = s.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id, Evaluation.status == "queued")
            .values(status="running", started_at=utcnow(), attempts=Evaluation.attempts + 1)
        ).rowcount
    if not claimed:
        return
    try:
        proc = spawn_job("backend.evaluate.worker", evaluation_id, workspace.root, "evaluations")
    except OSError as e:
        with database.session() as s:
            s.execute(
                update(Evaluation)
                .where(Evaluation.id == evaluation_id)
                .values(status="failed", finished_at=utcnow(), reason=f"could not start its process: {e}")
            )
        return
    with database.session() as s:
        s.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id)
            .values(pid=proc.pid, pid_started_at=start_time(proc.pid))
        )
    log.info("evaluation %s started as pid %s", evaluation_id, proc.pid)
