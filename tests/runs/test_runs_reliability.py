"""Runs that survive anything, with real processes, on SQLite and on a real PostgreSQL:
a worker killed with SIGKILL, the supervisor process killed under two runs, a worker that raises."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from backend.runs.query import checkpoints, curve
from backend.runs.queue import get_run
from backend.runs.supervisor import Supervisor
from backend.services import Services
from db import Run, RunStatus
from tests.conftest import ROOT, cli, cli_json
from tests.pgserver import use_database
from tests.runs.test_supervisor import wait_for

MARKED_WITHIN = 10.0  # seconds from a worker's death to its run being marked, with a 1 s tick


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request, tmp_path, monkeypatch) -> str:
    """SQLite, then PostgreSQL (marked slow: the same real-process checks again, a minute more)."""
    return use_database(request, tmp_path, monkeypatch)


@pytest.fixture
def services(workspace, database_url):
    return Services.open(workspace)


def run(services, run_id: int) -> Run:
    return get_run(services.database, run_id)


def killpg(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)


def test_a_killed_worker_is_marked_within_10_s_and_resumes_from_its_checkpoint(services, queued):
    run_id = queued(max_steps=5000, save_steps=2)
    sup = Supervisor(services.database, services.workspace, tick=1.0)
    assert sup.start()
    try:
        wait_for(lambda: checkpoints(services.workspace, run_id) and run(services, run_id).step >= 3)
        killpg(run(services, run_id).pid)
        killed = time.monotonic()
        marked = wait_for(lambda: (r := run(services, run_id)).status != RunStatus.running and r, timeout=30)
        assert time.monotonic() - killed <= MARKED_WITHIN
    finally:
        sup.stop()
    assert marked.status == RunStatus.interrupted
    assert "SIGKILL" in marked.reason and "out-of-memory" in marked.reason and "runs resume" in marked.reason
    assert "step" in marked.reason  # the log tail: the last lines the worker wrote
    last = checkpoints(services.workspace, run_id)[-1]["step"]
    with services.database.session() as s:  # finish soon after the resume
        s.get(Run, run_id).config = {**marked.config, "max_steps": last + 3}

    resumed = cli_json(services.workspace.root, "runs", "resume", str(run_id), "--wait", timeout=240)
    assert resumed["status"] == "completed", resumed["reason"]
    steps = [step for step, _ in curve(services.database, run_id, "loss")]
    assert steps == list(range(1, last + 4))  # one curve: every step once, continued after the checkpoint
    assert (
        f"resuming from {services.workspace.run_dir(run_id) / 'checkpoints' / f'checkpoint-{last}'}"
        in (services.workspace.run_dir(run_id) / "log.txt").read_text()
    )


def test_the_supervisor_killed_under_two_runs_loses_nothing_after_a_restart(services, queued):
    def supervise() -> subprocess.Popen:
        cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(services.workspace.root), "supervise"]
        return subprocess.Popen([*cmd, "--cpu-runs", "2"], cwd=ROOT, stderr=subprocess.DEVNULL)

    survivor, victim = queued(max_steps=5000, save_steps=2), queued(max_steps=5000, save_steps=2)
    first = supervise()
    try:
        wait_for(lambda: all(run(services, i).step >= 3 for i in (survivor, victim)), timeout=120)
    finally:
        first.kill()  # the app dies; its workers live on in their own sessions
        first.wait()
    pids = {i: run(services, i).pid for i in (survivor, victim)}
    step_then = run(services, survivor).step
    wait_for(lambda: run(services, survivor).step > step_then, timeout=30)  # still training, unsupervised
    wait_for(lambda: checkpoints(services.workspace, victim))
    killpg(pids[victim])  # and one worker dies while nobody watches

    second = supervise()
    try:
        victim_run = wait_for(lambda: (r := run(services, victim)).status.finished and r, timeout=30)
        assert victim_run.status == RunStatus.interrupted and "worker process is gone" in victim_run.reason
        assert run(services, survivor).status == RunStatus.running  # re-attached, not restarted
        assert run(services, survivor).pid == pids[survivor]
        out = cli_json(services.workspace.root, "runs", "cancel", str(survivor))
        assert out["status"] == "running"
        stopped = wait_for(lambda: (r := run(services, survivor)).status.finished and r, timeout=60)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
    assert stopped.status == RunStatus.cancelled
    with services.database.session() as s:
        assert s.query(Run).count() == 2
    for i in (survivor, victim):
        folder = services.workspace.run_dir(i)
        assert (folder / "log.txt").stat().st_size > 0 and checkpoints(services.workspace, i)
        steps = [step for step, _ in curve(services.database, i, "loss")]
        assert steps == list(range(1, steps[-1] + 1))  # no point lost or doubled across the restarts


def test_a_worker_that_raises_fails_with_its_message_and_log_and_the_cli_exits_1(
    services, queued, tiny_model, tmp_path
):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    queued()  # imports the dataset
    proc = cli(
        services.workspace.root,
        "train",
        "--dataset",
        "sums",
        "--model",
        str(broken),
        "--max-steps",
        "2",
        "--wait",
        "--json",
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "failed"
    assert "Error" in out["reason"].splitlines()[0]  # the exception, first
    assert str(broken) in out["reason"] or "safetensors" in out["reason"].lower()
    assert "Traceback" in out["reason"] or "ERROR" in out["reason"]  # then the worker's log tail
    assert out["log_tail"] and out["reason"].endswith(out["log_tail"].strip()[-200:])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_supervise_stops_on_ctrl_c_or_sigterm_also_when_started_in_the_background(tmp_path, signum):
    cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(tmp_path / "ws"), "supervise"]
    # A shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and Python keeps that.
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint)
    try:
        assert "supervising" in proc.stderr.readline()
        proc.send_signal(signum)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
