"""CPU threads shared among the processes that compute at once (backend.cpu), with real processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from backend import cpu
from backend.runs.queue import get_run
from backend.runs.slots import worker_env
from backend.runs.supervisor import Supervisor
from db import RunStatus

HOLDER = "import sys, time; from backend import cpu\nwith cpu.lease():\n    print('held', flush=True); time.sleep(60)"


@pytest.fixture
def two_cores(tmp_path, monkeypatch):
    """This test (and the workers it starts) on two cores, with leases of their own."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("these tests need a machine with at least 2 cores")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:2])
    monkeypatch.setenv("TUNEBOARD_CPU_LEASES", str(tmp_path / "leases"))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", cpu.AUTO, "TUNEBOARD_CPU_SHARING"):
        monkeypatch.delenv(name, raising=False)
    yield
    os.sched_setaffinity(0, before)


@pytest.fixture
def other_process(two_cores):
    """Another process holding a lease (as a Playground answer in the app would)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize(
    "cores, users, threads",
    [(2, 1, 2), (2, 2, 1), (2, 3, 1), (16, 1, 16), (16, 3, 5), (1, 2, 1), (8, 0, 8)],
)
def test_the_cores_are_divided_among_those_computing(cores, users, threads):
    assert cpu.share(cores, users) == threads


def test_a_cpu_worker_alone_gets_every_core_and_a_sleeping_wait(two_cores):
    env = worker_env(["cpu"])
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OMP_WAIT_POLICY"]) == ("2", "2", "PASSIVE")
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_a_second_process_computing_halves_the_budget_until_it_ends(other_process):
    assert worker_env(["cpu"])["OMP_NUM_THREADS"] == "1"
    with cpu.lease() as held:  # this thread computes too: the other process and this one share
        assert torch.get_num_threads() == held.threads == 1
        other_process.kill()
        other_process.wait()
        assert held.follow(force=True) == 2 == torch.get_num_threads()  # the cores come back
    assert cpu.live_leases() == 0


def test_a_users_own_thread_count_is_kept_and_the_policy_can_be_switched_off(two_cores, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_env(["cpu"])["OMP_NUM_THREADS"] == "3"
    assert "OMP_WAIT_POLICY" not in worker_env(["cpu"])
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("TUNEBOARD_CPU_SHARING", "0")  # the old behaviour: nothing set
    assert "OMP_NUM_THREADS" not in worker_env(["cpu"])
    with cpu.lease():
        assert cpu.live_leases() == 0


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in raw if b"=" in entry)


def test_a_worker_reports_the_threads_it_trained_with(two_cores, services, queued):
    run_id = queued(max_steps=2)
    finished = Supervisor(services.database, services.workspace).run_until(run_id, timeout=180)
    assert finished.status == RunStatus.completed, finished.reason
    assert finished.metrics["cpu_threads"] == 2
    assert "2 CPU thread(s)" in (services.workspace.run_dir(run_id) / "log.txt").read_text()


@pytest.mark.slow
def test_two_cpu_runs_at_once_share_the_cores(two_cores, services, queued):
    """--cpu-runs 2: the second run's worker starts with half the cores, and the first gives one back."""
    first, second = queued(max_steps=3), queued(max_steps=3)
    sup = Supervisor(services.database, services.workspace, cpu_runs=2)
    sup.launch_queued()
    pids = [get_run(services.database, i).pid for i in (first, second)]
    assert [_environ(pid)["OMP_NUM_THREADS"] for pid in pids] == ["2", "1"]
    deadline = time.monotonic() + 240
    while not all(get_run(services.database, i).status.finished for i in (first, second)):
        assert time.monotonic() < deadline, "the two runs did not finish in 4 minutes"
        sup.tick()
        time.sleep(0.5)
    runs = [get_run(services.database, i) for i in (first, second)]
    assert [r.status for r in runs] == [RunStatus.completed] * 2, [r.reason for r in runs]
    assert [r.metrics["cpu_threads"] for r in runs] == [1, 1]
    assert "CPU threads: 1" in (services.workspace.run_dir(first) / "log.txt").read_text()
