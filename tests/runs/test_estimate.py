"""A run's time estimated from seconds per step measured on this machine (a run's or a calibration's)."""

import json

import pytest

from backend.config import RunConfig
from backend.runs.estimate import CALIBRATION_FILE, calibrate, estimate
from backend.runs.queue import get_run
from backend.runs.supervisor import Supervisor
from db import RunStatus
from tests.conftest import cli


def test_the_estimate_counts_the_steps_the_run_takes_and_then_uses_its_speed(services, queued, tiny_model):
    run_id = queued(epochs=2)
    cfg = RunConfig.from_dict(get_run(services.database, run_id).config)
    before = estimate(services.database, services.workspace, cfg)
    assert before["sec_per_step"] is None and before["measured_by"] is None  # nothing timed here yet

    finished = Supervisor(services.database, services.workspace).run_until(run_id, timeout=180)
    assert finished.status == RunStatus.completed, finished.reason
    after = estimate(services.database, services.workspace, cfg)
    assert after["steps"] == before["steps"] == finished.total_steps
    assert after["measured_by"] == f"run {run_id}"
    assert after["sec_per_step"] == round(finished.metrics["sec_per_step"], 3)
    assert after["seconds"] == round(after["steps"] * finished.metrics["sec_per_step"], 1)
    # another batch size is another speed: not answered by this run
    other = estimate(services.database, services.workspace, RunConfig.from_dict({**cfg.to_dict(), "batch_size": 4}))
    assert other["measured_by"] is None


def test_a_calibration_times_real_steps_once_and_is_kept_in_the_workspace(services, queued, tiny_model):
    cfg = RunConfig.from_dict(get_run(services.database, queued(max_steps=30)).config)
    measured = calibrate(services.database, services.workspace, cfg)
    assert measured["measured_by"] == "calibration" and measured["steps"] == 30
    assert 0 < measured["sec_per_step"] < 60
    assert measured["seconds"] == pytest.approx(30 * measured["sec_per_step"], abs=0.1 + 30 * 0.0005)  # shown rounded
    (kept,) = json.loads((services.workspace.root / CALIBRATION_FILE).read_text()).values()
    assert round(kept, 3) == measured["sec_per_step"]
    assert estimate(services.database, services.workspace, cfg) == measured  # read back, not measured again


def test_cli_estimate_measures_on_request_and_refuses_a_missing_dataset(services, queued, tiny_model):
    queued()  # imports the 'sums' dataset
    args = ("estimate", "--dataset", "sums", "--model", str(tiny_model), "--batch-size", "2", "--max-steps", "7")
    plain = cli(services.workspace.root, *args, "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout) == {"steps": 7, "sec_per_step": None, "seconds": None, "measured_by": None}
    timed = json.loads(cli(services.workspace.root, *args, "--measure", "--json").stdout)
    assert timed["measured_by"] == "calibration" and timed["sec_per_step"] > 0
    missing = cli(services.workspace.root, "estimate", "--dataset", "nope", "--json")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "dataset 'nope' not found" in missing.stderr
