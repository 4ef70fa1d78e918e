"""Waiting for a job to end from a CLI or API call, supervising it here when no app (or `supervise`) runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.services import Services


def supervise_until(services: Services, run_id: int, timeout: float | None) -> None:
    """Block until the run ends, supervising it here when no app (or `supervise`) is running."""
    from backend.runs.queue import get_run

    busy = lambda: not get_run(services.database, run_id).status.finished  # noqa: E731
    supervise_while(services, busy, timeout, f"run {run_id}")


def supervise_while(services: Services, busy: Callable[[], bool], timeout: float | None, what: str) -> None:
    """Wait while `busy()`, supervising here when no app (or `supervise`) is running."""
    from backend.runs import ray_jobs
    from backend.runs.supervisor import Supervisor

    # the workspace's cluster (as its last supervisor announced it), so ray runs and trials go on here too
    address = ray_jobs.configured_address(services.workspace) if ray_jobs.installed() else None
    supervisor = Supervisor(services.database, services.workspace, ray=address)
    mine = supervisor.acquire()
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while busy():
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not finish in {timeout:.0f} s")
            if mine:
                supervisor.tick()
            time.sleep(supervisor.tick_seconds if mine else 1.0)
    finally:
        if mine:
            supervisor.stop()
