"""A run reports to TensorBoard, MLflow, W&B (offline) and Trackio through the Trainer's integrations, read
back with their own readers and formats."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

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


def test_run_reports_to_wandb_offline_and_trackio(services, queued, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "TRACKIO_DIR", "TRACKIO_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    run_id = queued(max_steps=3, logging_steps=1, report_to="wandb, trackio")
    run = Supervisor(services.database, services.workspace).run_until(run_id, timeout=240)
    assert run.status == RunStatus.completed, run.reason
    losses = [v for _, v in curve(services.database, run_id, "loss")]
    shown = actions.show_run(services, run_id)
    where = shown["trackers"]

    # W&B offline: the run's transaction log in the run folder, decoded into W&B's own protobuf records.
    assert where["wandb"]["mode"] == "offline" and where["wandb"]["run_id"]
    folder = Path(where["wandb"]["dir"])  # what `wandb sync` uploads later
    assert folder.parent == services.workspace.run_dir(run_id) / "wandb" and folder.name.startswith("offline-run-")
    [log] = folder.glob(f"run-{where['wandb']['run_id']}.wandb")
    records = wandb_records(log)
    [started] = [r.run for r in records if r.HasField("run")]
    assert started.display_name == shown["name"] and started.project == "tuneboard"
    logged = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item} for r in records]
    steps = [h for h in logged if "train/loss" in h]
    assert [h["train/global_step"] for h in steps] == [1, 2, 3]
    assert [h["train/loss"] for h in steps] == pytest.approx(losses, rel=1e-5)
    config = {i.key: json.loads(i.value_json) for r in records if r.HasField("config") for i in r.config.update}
    assert config["learning_rate"] == pytest.approx(shown["config"]["learning_rate"])

    # Trackio: its local database in the workspace, read through trackio's own storage API (in a fresh process:
    # trackio reads TRACKIO_DIR once, at import).
    assert where["trackio"]["dir"] == str(services.workspace.root / "trackio")
    read = (
        "import json, sys; from trackio.sqlite_storage import SQLiteStorage as S; "
        "print(json.dumps([S.get_runs('tuneboard'), S.get_logs('tuneboard', sys.argv[1])], default=str))"
    )
    env = {**os.environ, "TRACKIO_DIR": where["trackio"]["dir"]}
    out = subprocess.run([sys.executable, "-c", read, shown["name"]], env=env, capture_output=True, text=True)
    runs, logs = json.loads(out.stdout.splitlines()[-1])
    assert runs == [shown["name"]]
    assert [e["train/loss"] for e in logs if "train/loss" in e] == pytest.approx(losses, rel=1e-5)


def wandb_records(path: Path) -> list:
    """The protobuf records of a W&B transaction log (.wandb): a 7-byte header (':W&B', magic 0xBEE1,
    version 0), then 32 KiB blocks of LevelDB-log chunks (crc32 4, length 2, type 1: full, first, middle, last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room left in the block for a chunk header: padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break  # zeros: the end of what was written
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_an_unknown_tracker_is_refused_by_name():
    with pytest.raises(ValueError, match="setting 'report_to' names comet; choose among tensorboard, mlflow"):
        RunConfig(report_to="tensorboard,comet")


def test_a_tracker_whose_client_is_missing_is_refused_when_queued(services, queued, tiny_model, monkeypatch):
    # The trackers' clients are not in requirements.txt (make test installs them): a user without one is
    # refused at once, with the install line. Here the client is looked up under a package name no one has.
    from backend.runs import trackers

    monkeypatch.setitem(trackers.PACKAGES, "trackio", "tuneboard_no_such_tracker_client")
    with pytest.raises(ValueError, match=r"'report_to': trackio is not installed here; `pip install tuneboard_no_such"):
        queued(report_to="tensorboard,trackio")
    assert actions.list_runs(services) == []  # nothing was queued
