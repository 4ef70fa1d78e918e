"""Waiting for a job to end from a CLI or API call, supervising it here when no app (or `supervise`) runs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from backend.services import Services


def supervise_until(services: Services, run_id: int, timeout: float | None) -> None:
    """Block until the run ends, supervising it here when no app (or `supervise`) is running."""
    supervise_while(services, _running(services, run_id), timeout, f"run {run_id}")


def supervise_while(services: Services, busy: Callable[[], bool], timeout: float | None, what: str) -> None:
    """Wait while `busy()`, supervising here when no app (or `supervise`) is running."""
    with foreground(services) as supervisor:
        wait_while(supervisor, busy, timeout, what)


def queue_and_wait(services: Services, queue: Callable[[], Any], timeout: float | None) -> Any:
    """Queue a run with `queue()` (returns the Run) and block until it ends. When this process supervises, a
    spare worker starts first, so its imports overlap the checks before the run is queued (backend.runs.spare)."""
    with foreground(services, spare=True) as supervisor:
        run = queue()
        wait_while(supervisor, _running(services, run.id), timeout, f"run {run.id}")
    return run


@contextlib.contextmanager
def foreground(services: Services, spare: bool = False) -> Iterator[Any]:
    """This process's supervisor while no app (or `supervise`) holds the workspace; None when one does."""
    from backend.runs import ray_jobs
    from backend.runs.supervisor import Supervisor

    # the workspace's cluster (as its last supervisor announced it), so ray runs and trials go on here too
    address = ray_jobs.configured_address(services.workspace) if ray_jobs.installed() else None
    supervisor = Supervisor(services.database, services.workspace, ray=address)
    if not supervisor.acquire():
        yield None
        return
    try:
        if spare:
            supervisor.start_spare()
        yield supervisor
    finally:
        supervisor.stop()  # the spare too, unless a run took it


def wait_while(supervisor: Any, busy: Callable[[], bool], timeout: float | None, what: str) -> None:
    deadline = time.monotonic() + timeout if timeout else None
    while busy():
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish in {timeout:.0f} s")
        if supervisor is not None:
            supervisor.tick()
        time.sleep(supervisor.tick_seconds if supervisor is not None else 1.0)


def _running(services: Services, run_id: int) -> Callable[[], bool]:
    from backend.runs.queue import get_run

    return lambda: not get_run(services.database, run_id).status.finished
