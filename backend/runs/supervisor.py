"""Supervisor: starts queued runs as worker processes, watches them, reconciles after restarts.

One supervisor per workspace (an flock on workspace/supervisor.lock). Runs start in queue order
(priority, then id) when the devices they need have a free slot (one run per GPU and one on the
CPU by default). Workers run in their own process session, so stopping the app does not stop
them; on start and every tick the supervisor checks each `running` run: a live worker is left
alone, a dead one is marked with the reason and its log tail.

Idle (nothing running, queued or live of any other kind), it stops querying the database every
tick: it waits for a wake-up (`notify`: this process's event, or another process touching
workspace/supervisor.wake) and looks at the database only every IDLE_TICK seconds, so an app left
open all day costs nearly nothing (docs/benchmarks.md, bench/idle_cpu.py).

    sup = Supervisor(database, workspace); sup.start()   # thread, used by app.py
    sup.run_until(run_id)                                 # foreground, used by `cli train --wait`
    python -m backend.cli supervise --cpu-runs 2          # a process of its own

Given a Ray cluster (`ray=ADDRESS`, else $TUNEBOARD_RAY_ADDRESS), queued `ray` runs go to its Jobs API and
their jobs are watched there (backend.runs.ray_jobs); other cluster runs wait for their launcher.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from backend import cpu
from backend.processes import is_alive, kill_group, process_start_time
from backend.runs.external import LOCAL
from backend.runs.failures import explain_exit
from backend.runs.files import checkpoint_steps, log_tail
from backend.runs.kinds import advance_live
from backend.runs.launch import worker_command, worker_processes
from backend.runs.ray_jobs import ADDRESS_ENV, RAY, RayExecutor, announce
from backend.runs.slots import CPU, Slots, format_devices, parse_devices, worker_env
from backend.runs.spare import Spare
from backend.runs.spare import enabled as spare_enabled
from backend.workspace import Workspace, min_free_gb
from db import Database, Run, RunStatus
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
STALE_HEARTBEAT = timedelta(seconds=120)  # no heartbeat this long: the worker is hung or gone
START_GRACE = timedelta(seconds=60)  # a claimed run has this long to get a pid
CANCEL_GRACE = timedelta(seconds=60)  # after a cancel request, then the process group is killed
DEFAULT_CPU_RUNS = 1  # runs training on the CPU at once (they share its cores)
DEFAULT_RUNS_PER_GPU = 1  # runs sharing one GPU at once
QUEUE_SCAN = 100  # queued runs looked at per tick (the ones that fit start)
IDLE_TICK = 15.0  # seconds between database looks while idle (work queued without a wake-up waits this long)
WAKE_FILE = "supervisor.wake"  # touched when work is queued; an idle supervisor stats it every tick

_work = threading.Event()  # set when this process queues a run: its supervisor thread looks at once


def notify(workspace: Workspace | None = None) -> None:
    """Wake the supervisor now (work was queued): this process's at once, and, given the workspace,
    the one in another process (an app while the CLI queues) within a tick."""
    _work.set()
    if workspace is not None:
        with contextlib.suppress(OSError):  # a read-only workspace: the idle supervisor looks within IDLE_TICK
            (workspace.root / WAKE_FILE).touch()


def free_disk_problem(workspace: Workspace) -> str | None:
    """Why a run must not start for lack of disk (checkpoints fill it), or None when there is room."""
    need = min_free_gb()
    free = shutil.disk_usage(workspace.root).free / 1e9
    if free >= need:
        return None
    return (
        f"only {free:.2f} GB free on the disk of {workspace.root}; runs need at least {need:g} GB for "
        "checkpoints: free some space (delete old runs or exports) or lower $TUNEBOARD_MIN_FREE_GB"
    )


class Supervisor:
    def __init__(
        self,
        database: Database,
        workspace: Workspace,
        *,
        cpu_runs: int | None = None,
        runs_per_gpu: int | None = None,
        tick: float = 1.0,
        idle_tick: float = IDLE_TICK,
        ray: str | None = None,
    ):
        self.database = database
        self.workspace = workspace
        self.slots = Slots.detect(
            cpu_runs=int(os.environ.get("TUNEBOARD_CPU_RUNS", DEFAULT_CPU_RUNS)) if cpu_runs is None else cpu_runs,
            runs_per_gpu=int(os.environ.get("TUNEBOARD_RUNS_PER_GPU", DEFAULT_RUNS_PER_GPU))
            if runs_per_gpu is None
            else runs_per_gpu,
        )
        self.tick_seconds = tick
        self.idle_seconds = max(idle_tick, tick)
        self._children: dict[int, subprocess.Popen] = {}
        # a worker with its imports done for the next CPU run, on a machine without GPUs (backend.runs.spare);
        # started by loop() once nothing trains, or by start_spare()
        self._spare = Spare(workspace) if spare_enabled() and not self.slots.gpus else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file = None
        self._last_tick = time.monotonic()
        address = ray or os.environ.get(ADDRESS_ENV) or None
        self.ray = RayExecutor(database, workspace, address, end=self._end) if address else None

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
        with contextlib.suppress(OSError):  # the CLI and UI see which cluster ray runs go to
            announce(self.workspace, self.ray and self.ray.address)
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
        _work.set()  # end the wait at once
        if self._thread:
            self._thread.join(timeout=5)
        if self._spare is not None:  # one no run took (a run's worker is left training)
            self._spare.stop()
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
        """Tick until stopped; a failing tick (a database restart, say) is logged and retried. On a machine
        without GPUs it keeps a spare worker with its imports done for the next CPU run (backend.runs.spare)."""
        try:
            while not self._stop.is_set():
                busy = True
                try:
                    if self._lock_file is not None or self.acquire():
                        busy = self.tick()
                        self._keep_spare()
                except Exception:
                    log.exception("supervisor tick failed")
                if busy:
                    _work.wait(self.tick_seconds)
                else:
                    self._wait_idle()
                _work.clear()
        finally:
            if self._spare is not None:
                self._spare.stop()

    def start_spare(self) -> None:
        """A spare worker now, unless one lives (a CLI about to queue a run and wait for it)."""
        if self._spare is not None and self._spare.wanted():
            self._spare.start(worker_env([CPU]))

    def _keep_spare(self) -> None:
        """A new spare once no run of ours computes: its imports never take cores from a run's steps."""
        if not self._children:
            self.start_spare()

    def _wait_idle(self) -> None:
        """Until woken (notify, or the wake file touched) or IDLE_TICK passed: a stat per tick, no query."""
        deadline = time.monotonic() + self.idle_seconds
        seen = self._wake_stamp()
        while time.monotonic() < deadline and not self._stop.is_set():
            if _work.wait(self.tick_seconds) or self._wake_stamp() != seen:
                return

    def _wake_stamp(self) -> int:
        try:
            return (self.workspace.root / WAKE_FILE).stat().st_mtime_ns
        except OSError:
            return 0

    # -- one tick ------------------------------------------------------------------------------

    def tick(self) -> bool:
        """One look at everything; True while anything is live (a run running or queued, a search, ...)."""
        running = self.reconcile()
        jobs = self.advance_jobs()
        queued = self.launch_queued()
        return running or jobs or queued or bool(self._children)

    def advance_jobs(self) -> bool:
        """Other kinds of long work (hyperparameter searches, ...) take their step here (backend.runs.kinds)."""
        return advance_live(self.database, self.workspace)

    def reconcile(self) -> bool:
        """Mark the running runs whose worker is gone; True when any run was running."""
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
            has_checkpoint = bool(checkpoint_steps(self.workspace.run_dir(run.id) / "checkpoints"))
            if run.cancel_requested_at is not None:
                status = RunStatus.cancelled
            elif has_checkpoint:
                status = RunStatus.interrupted
                reason += " `runs resume` continues from the last checkpoint."
            else:
                status = RunStatus.failed
            self._end(run.id, status, reason, now)
        for run_id, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[run_id]
        return bool(running)

    def _end(self, run_id: int, status: RunStatus, reason: str, now: datetime | None = None) -> None:
        """Mark a running run ended, only if its worker did not write an outcome meanwhile."""
        with self.database.session() as s:
            changed = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.running)
                .values(
                    status=status,
                    finished_at=now or utcnow(),
                    reason=f"{reason}\n\n{log_tail(self.workspace.run_dir(run_id))}".strip(),
                )
            ).rowcount
        if changed:
            log.warning("run %s marked %s: %s", run_id, status.value, reason)

    def _why_dead(self, run: Run, now: datetime, check_clock: bool = True) -> str | None:
        """None while the run's worker is healthy, else the reason it is not."""
        if run.executor == RAY and self.ray is not None and self.ray.jobs() is not None:
            return self.ray.why_dead(run, now)  # its job on the cluster tells (and is stopped after a cancel)
        if run.executor != LOCAL:  # its workers live on other machines: only their heartbeat tells
            beat = as_utc(run.heartbeat_at)
            if check_clock and beat and now - beat > STALE_HEARTBEAT:
                return f"no heartbeat for {int((now - beat).total_seconds())} s from its {run.executor} workers."
            return None
        if run.pid is None:
            started = as_utc(run.started_at)
            return "the worker never started" if started and now - started > START_GRACE else None
        proc = self._children.get(run.id)
        if not is_alive(run.pid, run.pid_started_at):
            return explain_exit(proc.wait(timeout=5) if proc else None)
        if not check_clock:
            return None
        beat = as_utc(run.heartbeat_at)
        if beat and now - beat > STALE_HEARTBEAT:
            self._kill(run.pid)
            return f"no heartbeat for {int((now - beat).total_seconds())} s; the worker was stopped."
        asked = as_utc(run.cancel_requested_at)
        # Grace: a fixed minute, or three of this run's steps when its steps are slower than that.
        grace = max(CANCEL_GRACE.total_seconds(), 3 * (run.metrics or {}).get("sec_per_step", 0))
        if asked and (now - asked).total_seconds() > grace:
            self._kill(run.pid)
            return f"cancelled; the worker did not stop within {grace:.0f} s and was killed"
        return None

    def launch_queued(self) -> bool:
        """Start queued runs in order (priority desc, then id) while their devices have a free slot;
        True when any run was queued."""
        with self.database.session() as s:
            busy = Counter(
                d
                for devices in s.scalars(
                    select(Run.devices).where(Run.status == RunStatus.running, Run.executor == LOCAL)
                )
                for d in (parse_devices(devices) or ["cpu"])
            )
            queued = s.execute(
                select(Run.id, Run.devices)
                .where(Run.status == RunStatus.queued, Run.download_id.is_(None))  # none waits for its model
                .where(Run.executor == LOCAL)  # the others wait for their cluster's launcher (backend.runs.external)
                .order_by(Run.priority.desc(), Run.id)
                .limit(QUEUE_SCAN)
            ).all()
        any_slot_waits = False  # an "any slot" run that must wait keeps later "any slot" runs waiting too
        for run_id, wanted in queued:
            try:
                devices = parse_devices(wanted)
            except ValueError as e:
                self._refuse(run_id, str(e))
                continue
            impossible = self.slots.check(devices)
            if impossible:
                self._refuse(run_id, impossible)
                continue
            if devices is None and any_slot_waits:
                continue
            assigned = self.slots.assign(devices, busy)
            if assigned is None:  # runs pinned to other devices may start meanwhile
                any_slot_waits = any_slot_waits or devices is None
                continue
            if self.launch(run_id, assigned):
                busy.update(assigned)
        return (self.ray.launch_queued() if self.ray else False) or bool(queued)

    def _refuse(self, run_id: int, reason: str) -> None:
        """A queued run that can never start here ends failed, with the reason, instead of waiting forever."""
        with self.database.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.queued)
                .values(status=RunStatus.failed, finished_at=utcnow(), reason=f"not started: {reason}")
            )
        log.warning("run %s not started: %s", run_id, reason)

    def launch(self, run_id: int, devices: list[str] | None = None) -> bool:
        """Claim a queued run and start its worker on `devices`; False if it was not ours to start."""
        devices = devices or ["cpu"]
        disk = free_disk_problem(self.workspace)
        if disk:
            self._refuse(run_id, disk)
            return False
        # Claim atomically: two supervisors (or a CLI and an app) never start the same run twice.
        with self.database.session() as s:
            claimed = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.queued)
                .values(
                    status=RunStatus.running,
                    started_at=utcnow(),
                    heartbeat_at=utcnow(),
                    devices=format_devices(devices),
                )
            ).rowcount
        if not claimed:
            return False
        with self.database.session() as s:
            config = s.get(Run, run_id).config
        run_dir = self.workspace.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = worker_command(run_id, config, self.workspace)
        env = worker_env(devices, worker_processes(config))
        single_cpu = devices == [CPU] and worker_processes(config) == 1
        try:
            proc = self._spare.take(run_id, env, run_dir / "stdout.txt") if self._spare and single_cpu else None
            if proc is None:
                with open(run_dir / "stdout.txt", "ab") as out:
                    proc = subprocess.Popen(  # an argument list, never a shell
                        cmd,
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
        except OSError as e:
            self._end(run_id, RunStatus.failed, f"the worker could not be started: {e}")
            return False
        self._children[run_id] = proc
        if single_cpu:  # (torchrun's ranks take their own leases)
            cpu.lease_for(proc.pid)  # the worker's share of the cores counts from now on
        with self.database.session() as s:
            run = s.get(Run, run_id)
            run.pid = proc.pid
            run.pid_started_at = process_start_time(proc.pid)
        warm = " (the spare worker: imports done)" if "--spare" in proc.args else ""
        log.info("run %s started as pid %s on %s%s", run_id, proc.pid, format_devices(devices), warm)
        return True

    @staticmethod
    def _kill(pid: int) -> None:
        kill_group(pid)
