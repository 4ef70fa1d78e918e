"""The supervisor with real worker processes: start, cancel, survive a restart, reconcile the dead."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import torch

from backend.runs.failures import explain_exception, explain_exit
from backend.runs.query import checkpoints
from backend.runs.queue import cancel_run, curve, get_run, resume_run, set_priority
from backend.runs.supervisor import Supervisor, process_start_time
from db import Run, RunStatus
from db.models import utcnow


def wait_for(predicate, timeout: float = 120, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout} s")


def wait_finished(services, run_id: int, timeout: float = 120) -> Run:
    """The run once it has ended (completed, failed, cancelled or interrupted)."""
    return wait_for(lambda: (r := get_run(services.database, run_id)).status.finished and r, timeout=timeout)


def fake_running(services, **fields) -> int:
    with services.database.session() as s:
        run = Run(name="r", task="sft", model="m", method="lora", config={}, metrics={}, status=RunStatus.running)
        run.started_at = utcnow()
        for k, v in fields.items():
            setattr(run, k, v)
        s.add(run)
    return run.id


def test_queued_run_trains_in_its_own_process_and_records_progress(services, queued):
    run_id = queued(max_steps=6, logging_steps=1, save_steps=1, save_total_limit=2)
    sup = Supervisor(services.database, services.workspace)
    finished = sup.run_until(run_id, timeout=180)
    assert finished.status == RunStatus.completed, finished.reason
    run = get_run(services.database, run_id)
    assert run.pid and run.pid != os.getpid()
    assert run.step == run.total_steps == 6
    assert [step for step, _ in curve(services.database, run_id, "loss")] == [1, 2, 3, 4, 5, 6]
    assert curve(services.database, run_id, "learning_rate")
    assert run.heartbeat_at is not None and run.finished_at is not None
    assert (services.workspace.run_dir(run_id) / "adapter" / "adapter_model.safetensors").is_file()
    assert "completed" in (services.workspace.run_dir(run_id) / "log.txt").read_text()
    # the last save_total_limit kept; none at the last step, where the finished model is saved instead
    assert [c["step"] for c in checkpoints(services.workspace, run_id)] == [4, 5]
    assert run.devices == "cpu"  # the slot it ran in


def test_queue_starts_the_highest_priority_first_and_fills_every_slot(services, queued):
    low, high, second, third = queued(max_steps=2), queued(max_steps=2), queued(max_steps=2), queued(max_steps=2)
    set_priority(services.database, high, 5)
    sup = Supervisor(services.database, services.workspace, cpu_runs=2)
    try:
        sup.launch_queued()
        status = {i: get_run(services.database, i).status for i in (low, high, second, third)}
        assert status == {
            high: RunStatus.running,  # the priority run first,
            low: RunStatus.running,  # then the oldest, while a slot is free;
            second: RunStatus.queued,  # the rest wait their turn
            third: RunStatus.queued,
        }
        assert get_run(services.database, second).priority == 0
        sup.launch_queued()  # both slots busy: nothing more starts
        assert get_run(services.database, second).status == RunStatus.queued
    finally:
        for i in (low, high):
            sup._kill(get_run(services.database, i).pid)


def test_a_run_pinned_to_a_missing_gpu_fails_with_the_reason_instead_of_waiting(services, queued):
    run_id = queued(max_steps=2)
    with services.database.session() as s:
        s.get(Run, run_id).devices = "cuda:7"
    Supervisor(services.database, services.workspace).launch_queued()
    run = get_run(services.database, run_id)
    assert run.status == RunStatus.failed and "cuda:7 are not available here" in run.reason


@pytest.mark.parametrize(
    "error, oom",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (MemoryError(), True),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), True),
        (RuntimeError("CUDA error: out of memory"), True),
        (ValueError("setting 'lr' is wrong"), False),
    ],
)
def test_out_of_memory_is_recognized_and_says_what_to_change(error, oom):
    reason = explain_exception(error)
    assert ("lower the batch size" in reason) is oom
    assert type(error).__name__ in reason


def test_a_worker_killed_by_sigkill_is_reported_as_a_possible_out_of_memory():
    assert "out-of-memory killer" in explain_exit(-signal.SIGKILL)
    assert "SIGTERM" in explain_exit(-signal.SIGTERM)
    assert "code 3" in explain_exit(3)


def test_cancel_stops_a_running_worker_with_a_checkpoint(services, queued):
    run_id = queued(max_steps=5000, save_steps=1000)
    sup = Supervisor(services.database, services.workspace, tick=0.5)
    assert sup.start()
    try:
        wait_for(lambda: get_run(services.database, run_id).step >= 2)
        cancel_run(services.database, run_id)
        run = wait_finished(services, run_id, timeout=60)
    finally:
        sup.stop()
    assert run.status == RunStatus.cancelled
    assert run.step < 5000
    assert list((services.workspace.run_dir(run_id) / "checkpoints").glob("checkpoint-*"))
    with pytest.raises(ValueError, match="only queued or running"):
        cancel_run(services.database, run_id)


def test_cancel_a_queued_run_never_starts_it(services, queued):
    run_id = queued(max_steps=2)
    assert cancel_run(services.database, run_id).status == RunStatus.cancelled
    Supervisor(services.database, services.workspace).tick()
    run = get_run(services.database, run_id)
    assert run.status == RunStatus.cancelled and run.pid is None


def test_worker_survives_an_app_restart(services, queued):
    run_id = queued(max_steps=40)
    first = Supervisor(services.database, services.workspace, tick=0.5)
    assert first.start()
    wait_for(lambda: get_run(services.database, run_id).step >= 1)
    first.stop()  # the app goes away; its worker must not
    pid = get_run(services.database, run_id).pid
    os.kill(pid, 0)
    second = Supervisor(services.database, services.workspace)
    second.reconcile()
    assert get_run(services.database, run_id).status == RunStatus.running
    assert second.run_until(run_id, timeout=180).status == RunStatus.completed


def test_dead_worker_is_marked_failed_with_the_reason(services):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = fake_running(services, pid=proc.pid, heartbeat_at=utcnow())
    Supervisor(services.database, services.workspace).reconcile()
    run = get_run(services.database, run_id)
    assert run.status == RunStatus.failed
    assert "worker process" in run.reason


def test_reused_pid_is_not_mistaken_for_the_worker(services):
    me = os.getpid()
    run_id = fake_running(services, pid=me, pid_started_at=process_start_time(me) - 100, heartbeat_at=utcnow())
    Supervisor(services.database, services.workspace).reconcile()
    assert get_run(services.database, run_id).status == RunStatus.failed


def test_live_worker_is_left_alone_and_stale_heartbeat_is_killed(services):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        started = process_start_time(sleeper.pid)
        alive = fake_running(services, pid=sleeper.pid, pid_started_at=started, heartbeat_at=utcnow())
        sup = Supervisor(services.database, services.workspace)
        sup.reconcile()
        assert get_run(services.database, alive).status == RunStatus.running
        with services.database.session() as s:
            s.get(Run, alive).heartbeat_at = utcnow() - timedelta(minutes=10)
        sup.reconcile()
        run = get_run(services.database, alive)
        assert run.status == RunStatus.failed and "no heartbeat" in run.reason
        assert sleeper.wait(timeout=10) != 0
    finally:
        sleeper.kill()


def test_a_failing_worker_reports_why(services, queued, tmp_path):
    run_id = queued(max_steps=2)
    with services.database.session() as s:  # the model folder vanished after the run was queued
        run = s.get(Run, run_id)
        run.config = {**run.config, "model": str(tmp_path / "gone")}
    finished = Supervisor(services.database, services.workspace).run_until(run_id, timeout=120)
    assert finished.status == RunStatus.failed
    assert "ValueError: model" in finished.reason and "gone" in finished.reason


def test_one_supervisor_per_workspace(services):
    first = Supervisor(services.database, services.workspace)
    assert first.acquire()
    try:
        assert not Supervisor(services.database, services.workspace).acquire()
    finally:
        first.stop()
    assert Supervisor(services.database, services.workspace).acquire()


def test_resume_continues_from_the_checkpoint_with_one_curve(services, queued):
    run_id = queued(max_steps=5000, save_steps=2)
    sup = Supervisor(services.database, services.workspace, tick=0.5)
    assert sup.start()
    try:
        wait_for(lambda: get_run(services.database, run_id).step >= 5)
        cancel_run(services.database, run_id)
        wait_for(lambda: get_run(services.database, run_id).status == RunStatus.cancelled, timeout=60)
        stopped_at = get_run(services.database, run_id).step
        with services.database.session() as s:  # finish quickly once resumed
            run = s.get(Run, run_id)
            run.config = {**run.config, "max_steps": stopped_at + 3}
            run.metrics = {**run.metrics, "train_seconds": 1000.0}  # as if the first segment took that long
        # queued again; the supervisor (ticking every 0.5 s) may already have started it
        assert resume_run(services.database, run_id).status in (RunStatus.queued, RunStatus.running)
        with pytest.raises(ValueError, match="only interrupted, failed or cancelled"):
            resume_run(services.database, run_id)
        run = wait_finished(services, run_id)
    finally:
        sup.stop()
    assert run.status == RunStatus.completed, run.reason
    steps, losses = zip(*curve(services.database, run_id, "loss"), strict=True)
    assert list(steps) == sorted(set(steps)) and steps[-1] == stopped_at + 3  # continued, no step twice
    assert run.metrics["train_loss"] == pytest.approx(sum(losses) / len(losses), abs=1e-3)  # both segments
    assert "resuming from" in (services.workspace.run_dir(run_id) / "log.txt").read_text()
    assert 1000 < run.metrics["train_seconds"] < 1300  # both segments' training time
    assert [a.kind for a in run.artifacts] == ["adapter"]  # saved twice to one folder: listed once


def test_app_takes_over_when_the_cli_supervisor_ends(services, queued):
    cli_side = Supervisor(services.database, services.workspace)
    assert cli_side.acquire()
    app_side = Supervisor(services.database, services.workspace, tick=0.3)
    try:
        assert not app_side.start()
        run_id = queued(max_steps=2)
        time.sleep(1.5)
        assert get_run(services.database, run_id).status == RunStatus.queued  # not ours to start yet
        cli_side.stop()
        run = wait_finished(services, run_id)
        assert run.status == RunStatus.completed
    finally:
        app_side.stop()


def test_a_search_cannot_cancel_a_run_that_has_written_its_last_step(services):
    # A pruned trial asks with if_steps_left: once the worker has written its last step the run
    # completes whatever is asked, so the ask is refused and the trial is told its final value instead.
    last = fake_running(services, step=24, total_steps=24)
    with pytest.raises(ValueError, match="at its last step"):
        cancel_run(services.database, last, if_steps_left=True)
    assert get_run(services.database, last).cancel_requested_at is None
    middle = fake_running(services, step=18, total_steps=24)
    assert cancel_run(services.database, middle, if_steps_left=True).cancel_requested_at is not None
    assert cancel_run(services.database, last).cancel_requested_at is not None  # a person's cancel still asks
