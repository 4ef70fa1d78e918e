"""Several training processes: the worker command line, and a real 2-process DDP run on CPU (gloo)."""

import sys

from backend.runs.launch import worker_command
from backend.workspace import Workspace
from tests.conftest import cli_json, write_alpaca


def test_one_process_is_a_plain_worker_and_several_go_through_torchrun(tmp_path):
    ws = Workspace.resolve(tmp_path)
    assert worker_command(3, {"dataset": "d"}, ws) == [
        sys.executable, "-m", "backend.runs.worker", "3", "--workspace", str(ws.root)
    ]  # fmt: skip
    for config in ({"dataset": "d", "nproc": 2}, {"dataset": "d", "devices": "cuda:0,1"}):
        cmd = worker_command(3, config, ws)
        assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        assert cmd[6:] == ["-m", "backend.runs.worker", "3", "--workspace", str(ws.root)]


def test_two_cpu_processes_train_one_run_through_torchrun(workspace, tiny_model, tmp_path):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=16)), "--name", "add")
    run = cli_json(
        workspace,
        *("train", "--dataset", "add", "--model", str(tiny_model), "--method", "full"),
        *("--max-steps", "4", "--batch-size", "2", "--nproc", "2", "--devices", "cpu", "--wait"),
    )
    assert run["status"] == "completed", run.get("reason")
    metrics = run["metrics"]
    assert metrics["world_size"] == 2 and metrics["device"] == "cpu"
    # 4 steps x 2 rows x 2 ranks = 16 rows: one epoch, so each rank saw its own half of the data.
    assert run["epoch"] == 1.0
    assert "[rank 0]" in run["log_tail"] and "[rank 1]" in run["log_tail"]
    assert run["artifacts"][0]["kind"] == "model"
