"""CPU threads per process, so that Tuneboard's processes share the cores instead of fighting over them.

Why: torch's CPU build (GNU OpenMP, `torch.__config__.parallel_info()`) gives every process one
thread per core, and by default a thread that waits for work spins on its core for a while before
it sleeps. Two such processes on the same cores (a CPU run while the Playground answers, two runs
with `--cpu-runs 2`, an export during a run) keep preempting each other's spinning threads: a step
took 15-30x longer instead of about 2x. So (measured in docs/benchmarks.md, "CPU sharing"):

1. Waiting threads sleep at once (OMP_WAIT_POLICY=PASSIVE): set in a worker's environment and,
   before torch is imported, in the app's and the CLI's own (`wait_politely`).
2. Each piece of CPU work (a CPU run's worker, a Playground answer, a prediction, an export) holds
   a *lease* while it computes: a file `<pid>-<n>` in one folder per user and machine (the cores
   are the machine's, whatever the workspace). The cores are divided among the live leases:
   2 cores, one run -> 2 threads; a run and a Playground answer -> 1 each (`share`).
3. The budget follows what runs now: a worker re-reads it before each step (`Lease.follow`), so it
   gives a core to a Playground answer and takes it back when the answer is done.

A user's own OMP_NUM_THREADS is respected (nothing here changes thread counts then), and
TUNEBOARD_CPU_SHARING=0 switches all of this off (the old behaviour; bench/cpu_sharing.py).

    env.update(worker_env()); lease_for(proc.pid)   # the supervisor, for a worker on the CPU
    with lease() as held:               # a worker, a Playground answer, an export
        held.follow()                   # (a worker, every step) the share of what runs now
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from pathlib import Path

from backend.processes import is_alive

log = logging.getLogger(__name__)

RUN = "run"  # the name of a worker's lease
AUTO = "TUNEBOARD_CPU_THREADS"  # set by the supervisor with the budget it chose (not the user's own count)
FOLLOW_EVERY_S = 1.0  # a worker looks at the leases at most this often (a listdir and a few kill(0) calls)
_counter = itertools.count()


def enabled() -> bool:
    """Whether Tuneboard chooses thread counts here: not switched off, and no OMP_NUM_THREADS of the user's."""
    if os.environ.get("TUNEBOARD_CPU_SHARING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return "OMP_NUM_THREADS" not in os.environ or AUTO in os.environ


def wait_politely() -> None:
    """Let this process's OpenMP threads sleep while they wait. Only works before torch is imported."""
    if enabled():
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cores() -> int:
    """The cores this process may run on (a container's or taskset's limit included)."""
    return len(os.sched_getaffinity(0))


def share(cores: int, users: int) -> int:
    """Threads for each of `users` processes computing on `cores` cores at once: an equal part, at least 1."""
    return max(1, cores // max(1, users))


def lease_dir() -> Path:
    """Where the leases live: $TUNEBOARD_CPU_LEASES, else one folder per user in the temp dir."""
    folder = os.environ.get("TUNEBOARD_CPU_LEASES") or Path(tempfile.gettempdir()) / f"tuneboard-cpu-{os.getuid()}"
    return Path(folder)


def live_leases(folder: Path | None = None) -> int:
    """How many leases are held now; those of processes that died are removed."""
    folder = folder or lease_dir()
    count = 0
    for path in folder.glob("*-*"):
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and is_alive(int(pid), None):
            count += 1
        else:
            path.unlink(missing_ok=True)
    return count


def budget(extra: int = 0) -> int:
    """Threads for one process now: the cores shared among the live leases plus `extra` about to start."""
    return share(cores(), live_leases() + extra)


def worker_env(processes: int = 1) -> dict[str, str]:
    """Environment entries for a worker about to start on the CPU with `processes` processes."""
    if not enabled():
        return {}
    threads = str(budget(extra=processes))
    # MKL follows OpenMP here, but a user's MKL_NUM_THREADS would not: set both with the budget.
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, AUTO: threads}
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    return env


def lease_for(pid: int) -> None:
    """Take the lease of the worker just started as `pid` (it adopts it as `lease(RUN)`): runs started
    one after the other count each other at once, not only once their imports are done."""
    if enabled():
        lease_dir().mkdir(parents=True, exist_ok=True)
        (lease_dir() / f"{pid}-{RUN}").touch()


class Lease:
    """This thread's share of the cores while it computes (see the module docstring)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.path: Path | None = None
        self.threads = 0
        self._before = 0
        self._checked = 0.0

    def __enter__(self) -> Lease:
        import torch

        self._before = torch.get_num_threads()
        self.threads = self._before
        if enabled():
            folder = lease_dir()
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / f"{os.getpid()}-{self.name or next(_counter)}"
            self.path.touch()
            self.follow(force=True)
        return self

    def follow(self, force: bool = False) -> int:
        """Take this moment's share of the cores (at most every FOLLOW_EVERY_S); returns the thread count."""
        now = time.monotonic()
        if self.path is None or (not force and now - self._checked < FOLLOW_EVERY_S):
            return self.threads
        self._checked = now
        threads = budget()
        if threads != self.threads:
            import torch

            torch.set_num_threads(threads)  # this thread's OpenMP count; new threads start from it too
            log.info("CPU threads: %d (%d cores shared by %d processes)", threads, cores(), live_leases())
            self.threads = threads
        return threads

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
            if self.threads != self._before:
                import torch

                torch.set_num_threads(self._before)


def lease(name: str | None = None) -> Lease:
    """A context manager: hold a share of the cores while the block computes (set in the calling thread).
    `name`: RUN in a worker, which adopts the lease its supervisor took for it (`lease_for`)."""
    return Lease(name)
