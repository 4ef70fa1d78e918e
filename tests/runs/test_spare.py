"""The spare worker: a CPU run handed to a worker whose imports are done trains exactly as a cold one."""

import os
import re
import time
from pathlib import Path

import pytest

from backend.runs.queue import curve
from backend.runs.slots import CPU, worker_env
from backend.runs.spare import LOG_FILE, MAX_DEATHS, READY, Spare
from backend.runs.supervisor import Supervisor
from db import RunStatus
from tests.conftest import cli, cli_json, write_alpaca
from tests.runs.test_supervisor import wait_finished, wait_for


def ready(services) -> bool:
    log = services.workspace.root / LOG_FILE
    return log.is_file() and READY in log.read_text(errors="replace")


def test_a_run_handed_to_the_spare_trains_as_a_cold_worker_would(services, queued):
    cold = queued(max_steps=4, logging_steps=1, seed=3)  # run_until (the CLI's --wait) starts a cold worker
    assert Supervisor(services.database, services.workspace).run_until(cold, timeout=180).status.value == "completed"

    sup = Supervisor(services.database, services.workspace, tick=0.2)
    sup.start()
    try:
        wait_for(lambda: ready(services), timeout=120)
        spare_pid = sup._spare.proc.pid
        warm = queued(max_steps=4, logging_steps=1, seed=3)
        run = wait_finished(services, warm, timeout=180)
        assert run.status == RunStatus.completed, run.reason
        assert run.pid == spare_pid  # the spare took the run: no cold process was started
        # the same training, step for step, as the cold worker's
        losses = [[v for _, v in curve(services.database, i, "loss")] for i in (cold, warm)]
        assert len(losses[0]) == 4 and losses[1] == pytest.approx(losses[0], rel=1e-5)
        folder = services.workspace.run_dir(warm)
        assert "ready to train" in (folder / "log.txt").read_text()
        assert "'loss'" in (folder / "stdout.txt").read_text()  # the Trainer's own prints reach the run's file
        assert run.metrics["startup_seconds"] >= 0 and run.metrics["save_seconds"] >= 0
        # once nothing trains, the next spare starts; the one that trained has ended
        wait_for(lambda: sup._spare.alive() and sup._spare.proc.pid != spare_pid, timeout=30)
        following = sup._spare.proc
    finally:
        sup.stop()
    assert following.poll() is not None  # stopping the supervisor ends its spare


def test_a_spare_is_not_used_when_a_setting_changed_since_it_started(services):
    spare = Spare(services.workspace)
    spare.start(worker_env([CPU]))
    try:
        proc = spare.proc
        env = {**worker_env([CPU]), "HF_HUB_OFFLINE": "1" if os.environ.get("HF_HUB_OFFLINE") != "1" else "0"}
        folder = services.workspace.run_dir(1)
        folder.mkdir(parents=True)
        assert spare.take(1, env, folder / "stdout.txt") is None  # a cold worker reads the new value instead
        assert proc.poll() is not None and not spare.alive()
    finally:
        spare.stop()


def test_a_spare_ends_when_its_supervisor_goes_away(services):
    spare = Spare(services.workspace)
    spare.start(worker_env([CPU]))
    try:
        wait_for(lambda: ready(services), timeout=120)
        spare.proc.stdin.close()  # what the supervisor's death does to the pipe
        assert spare.proc.wait(timeout=30) == 0
    finally:
        spare.stop()


def test_a_spare_that_keeps_dying_is_given_up_and_runs_start_cold(services, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    (broken / "peft").mkdir(parents=True)
    (broken / "peft" / "__init__.py").write_text("raise ImportError('a broken install')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))  # every new worker process imports this peft first
    sup = Supervisor(services.database, services.workspace, tick=0.2)
    sup.start()
    try:
        wait_for(lambda: sup._spare is not None and sup._spare.deaths >= MAX_DEATHS, timeout=120)
        time.sleep(2)  # ten more ticks: no fourth spare
        assert sup._spare.deaths == MAX_DEATHS and sup._spare.proc is None
        assert "a broken install" in (services.workspace.root / LOG_FILE).read_text()
    finally:
        sup.stop()


def _spares_of(workspace) -> list[int]:
    """Live spare workers of this workspace (their command line names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--spare" in cmd and str(workspace).encode() in cmd and (proc / "stat").read_text().split()[2] != "Z":
            pids.append(int(proc.name))
    return pids


def test_train_wait_hands_its_run_to_the_spare_it_started_and_leaves_none_behind(workspace, tiny_model, tmp_path):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "sums.json", n=8)), "--name", "sums")
    settings = ("--model", str(tiny_model), "--max-steps", "2", "--batch-size", "2", "--lora-rank", "4")
    run = cli_json(workspace, "train", "--dataset", "sums", *settings, "--wait")
    assert run["status"] == "completed"
    ready = re.search(rf"{READY} \(pid (\d+)", (workspace / LOG_FILE).read_text())
    assert ready and int(ready.group(1)) == run["pid"]  # the spare the CLI started trained the run
    wait_for(lambda: not _spares_of(workspace), timeout=60)  # that worker exits once it marked the run done
    bad = cli(workspace, "train", "--dataset", "no-such-data", *settings, "--wait")
    assert bad.returncode == 2 and "no-such-data" in bad.stderr
    assert _spares_of(workspace) == []  # the spare it started for the refused run was stopped
