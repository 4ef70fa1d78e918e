"""A run reports to TensorBoard and MLflow through the Trainer's integrations, read back with their own clients."""

import pytest

from backend import actions
from backend.config import RunConfig
from backend.runs.queue import curve
from backend.runs.supervisor import Supervisor
from db import RunStatus


def test_run_reports_its_name_settings_and_loss_to_tensorboard_and_mlflow(services, queued, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "TENSORBOARD_LOGGING_DIR"):
        monkeypatch.delenv(var, raising=False)
    run_id = queued(max_steps=3, logging_steps=1, report_to="tensorboard, mlflow")
    run = Supervisor(services.database, services.workspace).run_until(run_id, timeout=240)
    assert run.status == RunStatus.completed, run.reason
    losses = curve(services.database, run_id, "loss")
    assert [step for step, _ in losses] == [1, 2, 3]
    shown = actions.show_run(services, run_id)
    where = shown["trackers"]

    # TensorBoard: the event files in the run folder, read with TensorBoard's own reader.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert where["tensorboard"]["log_dir"] == str(services.workspace.run_dir(run_id) / "tensorboard")
    events = EventAccumulator(where["tensorboard"]["log_dir"])
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [e.step for e in scalars] == [1, 2, 3]
    assert [e.value for e in scalars] == pytest.approx([v for _, v in losses], rel=1e-5)

    # MLflow: the sqlite store in the workspace, queried through MLflow's client.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=where["mlflow"]["tracking_uri"])
    found = client.get_run(where["mlflow"]["run_id"])
    assert found.info.run_name == shown["name"]
    assert found.data.tags["tuneboard.run_id"] == str(run_id)
    assert float(found.data.params["learning_rate"]) == pytest.approx(shown["config"]["learning_rate"])
    history = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, "loss"))
    assert [step for step, _ in history] == [1, 2, 3]
    assert [value for _, value in history] == pytest.approx([v for _, v in losses], rel=1e-5)
    assert "tuneboard/config.json" in [a.path for a in client.list_artifacts(found.info.run_id, "tuneboard")]
    assert found.info.artifact_uri.startswith((services.workspace.root / "mlartifacts").as_uri())  # not ./mlruns


def test_an_unknown_tracker_is_refused_by_name():
    with pytest.raises(ValueError, match="setting 'report_to' names comet; choose among tensorboard, mlflow"):
        RunConfig(report_to="tensorboard,comet")


def test_a_tracker_whose_client_is_missing_is_refused_when_queued(services, queued, tiny_model):
    # trackio is listed but not a dependency of this project: refused at once, with the install line.
    with pytest.raises(ValueError, match=r"'report_to': trackio is not installed here; `pip install trackio`"):
        queued(report_to="tensorboard,trackio")
    assert actions.list_runs(services) == []  # nothing was queued
