"""Supervisor: starts queued runs as worker processes, watches them, reconciles after restarts.

One supervisor per workspace (an flock on workspace/supervisor.lock). Workers run in their own
process session, so stopping the app does not stop them; on start and every tick the supervisor
checks each `running` run: a live worker is left alone, a dead one is marked with the reason.

    sup = Supervisor(database, workspace); sup.start()   # thread, used by app.py
    sup.run_until(run_id)                                 # foreground, used by `cli train --wait`
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from backend.launch import worker_command
from backend.runfiles import log_tail
from backend.workspace import Workspace
from db import Database, Run, RunStatus
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
STALE_HEARTBEAT = timedelta(seconds=120)  # no heartbeat this long: the worker is hung or gone
START_GRACE = timedelta(seconds=60)  # a claimed run has this long to get a pid
CANCEL_GRACE = timedelta(seconds=60)  # after a cancel request, then the process group is killed


def process_start_time(pid: int) -> float | None:
    """Start time of `pid` in clock ticks since boot (Linux), so a reused pid is never mistaken for ours."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return float(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except OSError:
        pass
    return started is None or process_start_time(pid) == started


class Supervisor:
    def __init__(self, database: Database, workspace: Workspace, slots: int = 1, tick: float = 1.0):
        self.database = database
        self.workspace = workspace
        self.slots = slots
        self.tick_seconds = tick
        self._children: dict[int, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file = None
        self._last_tick = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------

    def acquire(self) -> bool:
        """Become this workspace's supervisor; False if another process already is."""
        f = open(self.workspace.root / "supervisor.lock", "w")  # noqa: SIM115 - held open while we supervise
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f
        return True

    def start(self) -> bool:
        """Supervise in a thread; if another process supervises now, take over when it stops."""
        mine = self.acquire()
        if not mine:
            log.warning("another supervisor (a CLI or app) holds %s; taking over when it ends", self.workspace.root)
        self._thread = threading.Thread(target=self.loop, name="supervisor", daemon=True)
        self._thread.start()
        return mine

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None

    def run_until(self, run_id: int, timeout: float | None = None) -> Run:
        """Supervise in the foreground until `run_id` ends (used when no app is running)."""
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            self.tick()
            with self.database.session() as s:
                run = s.get(Run, run_id)
                if run.status.finished:
                    return run
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish in {timeout:.0f} s")
            time.sleep(self.tick_seconds)

    def loop(self) -> None:
        """Tick until stopped; a failing tick (a locked database, say) is logged and retried."""
        while not self._stop.is_set():
            try:
                if self._lock_file is not None or self.acquire():
                    self.tick()
            except Exception:
                log.exception("supervisor tick failed")
            self._stop.wait(self.tick_seconds)

    # -- one tick ------------------------------------------------------------------------------

    def tick(self) -> None:
        self.reconcile()
        self.launch_queued()

    def reconcile(self) -> None:
        now = utcnow()
        # After a suspend the wall clock jumps ahead of every heartbeat: give workers a tick to beat.
        woke_up = time.monotonic() - self._last_tick > STALE_HEARTBEAT.total_seconds() / 2
        self._last_tick = time.monotonic()
        with self.database.session() as s:
            running = list(s.scalars(select(Run).where(Run.status == RunStatus.running)))
        for run in running:
            reason = self._why_dead(run, now, check_clock=not woke_up)
            if reason is None:
                continue
            has_checkpoint = any((self.workspace.run_dir(run.id) / "checkpoints").glob("checkpoint-*"))
            if run.cancel_requested_at is not None:
                status = RunStatus.cancelled
            elif has_checkpoint:
                status = RunStatus.interrupted
            else:
                status = RunStatus.failed
            with self.database.session() as s:  # only if the worker did not finish it meanwhile
                s.execute(
                    update(Run)
                    .where(Run.id == run.id, Run.status == RunStatus.running)
                    .values(
                        status=status,
                        finished_at=now,
                        reason=f"{reason}\n\n{log_tail(self.workspace.run_dir(run.id))}".strip(),
                    )
                )
            log.warning("run %s marked %s: %s", run.id, status.value, reason)
        for run_id, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[run_id]

    def _why_dead(self, run: Run, now: datetime, check_clock: bool = True) -> str | None:
        """None while the run's worker is healthy, else the reason it is not."""
        if run.pid is None:
            started = as_utc(run.started_at)
            return "the worker never started" if started and now - started > START_GRACE else None
        proc = self._children.get(run.id)
        code = proc.poll() if proc else None
        if not is_alive(run.pid, run.pid_started_at):
            return f"the worker process exited with code {code}" if code is not None else "the worker process is gone"
        if not check_clock:
            return None
        beat = as_utc(run.heartbeat_at)
        if beat and now - beat > STALE_HEARTBEAT:
            self._kill(run.pid)
            return f"no heartbeat for {int((now - beat).total_seconds())} s; the worker was stopped"
        asked = as_utc(run.cancel_requested_at)
        # Grace: a fixed minute, or three of this run's steps when its steps are slower than that.
        grace = max(CANCEL_GRACE.total_seconds(), 3 * (run.metrics or {}).get("sec_per_step", 0))
        if asked and (now - asked).total_seconds() > grace:
            self._kill(run.pid)
            return f"cancelled; the worker did not stop within {grace:.0f} s and was killed"
        return None

    def launch_queued(self) -> None:
        with self.database.session() as s:
            busy = s.scalar(
                select(Run.id).where(Run.status == RunStatus.running).limit(self.slots).offset(self.slots - 1)
            )
            if busy is not None:
                return
            queued = s.scalar(select(Run.id).where(Run.status == RunStatus.queued).order_by(Run.id).limit(1))
        if queued is not None:
            self.launch(queued)

    def launch(self, run_id: int) -> None:
        # Claim atomically: two supervisors (or a CLI and an app) never start the same run twice.
        with self.database.session() as s:
            claimed = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.queued)
                .values(status=RunStatus.running, started_at=utcnow(), heartbeat_at=utcnow())
            ).rowcount
        if not claimed:
            return
        with self.database.session() as s:
            config = s.get(Run, run_id).config
        run_dir = self.workspace.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = worker_command(run_id, config, self.workspace)
        with open(run_dir / "stdout.txt", "ab") as out:
            proc = subprocess.Popen(  # an argument list, never a shell
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._children[run_id] = proc
        with self.database.session() as s:
            run = s.get(Run, run_id)
            run.pid = proc.pid
            run.pid_started_at = process_start_time(proc.pid)
        log.info("run %s started as pid %s", run_id, proc.pid)

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
