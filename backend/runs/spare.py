"""A worker started before its run: its imports are done while nothing trains.

A cold worker spends 5-8 s on 2 cores importing torch, transformers, peft and the task code before it reads
its run; the run's first step waits for that. On a machine without GPUs the supervisor's loop keeps one
spare worker (`python -m backend.runs.worker --spare`) that has done those imports and waits on its stdin.
A queued CPU run of one process is handed to it as one JSON line (the run id, the thread budget of the
moment, the run's stdout file); the spare takes the run's place and the loop starts the next spare once no
run trains, so its imports never compete with a run's steps. `train --wait` without an app starts one
before it checks and queues its run (backend.actions.waiting.queue_and_wait). Idle it sleeps in a read
(no CPU; 0.9 GB resident). It ends when the supervisor stops or dies (EOF on its stdin).

Anything that differs from a cold start is refused: a run whose environment differs from the spare's in
more than the thread budget (someone changed a setting since the spare started) starts cold, and the spare
is replaced. A spare that ends on its own MAX_DEATHS times (a broken install: its output is in
workspace/spare-worker.log) is not started again, and runs start cold. `TUNEBOARD_SPARE_WORKER=0` turns it off.

    spare = Spare(workspace); spare.start(env)            # supervisor side
    proc = spare.take(run_id, env, run_dir / "stdout.txt")  # the spare's Popen, now the run's; None: start cold
    run_id = wait_for_run()                               # worker side (worker.py --spare)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from backend import cpu
from backend.processes import ROOT, kill_group
from backend.workspace import Workspace

log = logging.getLogger(__name__)

ENV = "TUNEBOARD_SPARE_WORKER"
LOG_FILE = "spare-worker.log"  # what the newest spare printed before it had a run (its imports' warnings)
READY = "spare worker ready"  # its line there once the imports are done
MAX_DEATHS = 3  # spares that end on their own before the supervisor stops starting them
# What a hand-off may change: the thread budget is set per run (backend.cpu); everything else must match.
HANDED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", cpu.AUTO)
WARM = (  # what every CPU run imports before its first step
    "backend.runs.callbacks",
    "backend.tasks",
    "backend.tasks.causal_lm",
    "backend.training.methods",
    "backend.training.optim",
    "backend.models.catalog",
    "backend.data",
    "peft",
    "transformers.trainer",
)


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class Spare:
    """The supervisor's side: one pre-started worker, handed the next CPU run."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.deaths = 0  # spares that ended before they were handed a run (a broken install, say)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wanted(self) -> bool:
        """Whether a new spare should start: none is alive, and spares have not kept dying on their own."""
        if self.proc is not None and self.proc.poll() is not None:  # it ended without a run
            self.deaths += 1
            self.proc = None
            if self.deaths == MAX_DEATHS:
                log.warning(
                    "the spare worker ended %d times before it had a run (its output: %s); runs start cold",
                    MAX_DEATHS,
                    self.workspace.root / LOG_FILE,
                )
        return self.proc is None and self.deaths < MAX_DEATHS

    def start(self, env: dict[str, str]) -> None:
        """Start a spare worker with the environment a CPU worker would get now."""
        self.stop()
        with open(self.workspace.root / LOG_FILE, "wb") as out:
            self.proc = subprocess.Popen(  # an argument list, never a shell
                [sys.executable, "-m", "backend.runs.worker", "--spare", "--workspace", str(self.workspace.root)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a cancel kills the run's group, as for any worker
            )
        self.env = dict(env)
        log.info("spare worker started as pid %s", self.proc.pid)

    def take(self, run_id: int, env: dict[str, str], stdout: Path) -> subprocess.Popen | None:
        """Hand run `run_id` to the spare: its Popen, now the run's worker; None when it cannot take it."""
        if not self.alive():
            return None
        differs = sorted(k for k in set(env) | set(self.env) if k not in HANDED and env.get(k) != self.env.get(k))
        if differs:  # read at import time by some library: only a fresh process is sure to see the new value
            log.info("spare worker not used for run %s: %s changed since it started", run_id, ", ".join(differs))
            self.stop()
            return None
        line = json.dumps({"run_id": run_id, "env": {k: env[k] for k in HANDED if k in env}, "stdout": str(stdout)})
        proc, self.proc = self.proc, None
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.close()
        except OSError:  # it died meanwhile
            _kill(proc)
            return None
        return proc

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None


def _kill(proc: subprocess.Popen) -> None:
    kill_group(proc.pid)  # its own group: nothing else is in it
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def wait_for_run() -> int | None:
    """The spare's side: import what a run needs, then wait for the hand-off and take it on (its thread
    budget, its stdout). The run id, or None when the supervisor ended first (EOF)."""
    import importlib
    import time

    start = time.monotonic()
    for name in WARM:
        importlib.import_module(name)
    print(f"{READY} (pid {os.getpid()}, imports took {time.monotonic() - start:.1f} s)", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return None
    handed = json.loads(line)
    os.environ.update(handed["env"])
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(handed["stdout"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)  # from now on everything printed goes where a cold worker's output goes
    os.dup2(fd, 2)
    os.close(fd)
    return int(handed["run_id"])
