"""Two torchrun "nodes" on this machine (c10d rendezvous, gloo on the loopback) train one queued run."""

import os
import socket
import subprocess

from backend.runs.launch import node_command
from backend.runs.supervisor import ROOT, Supervisor
from backend.services import Services
from tests.conftest import cli, cli_json, stop_workers, write_alpaca


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_slurm_run_waits_for_its_nodes_and_two_torchrun_nodes_train_it(workspace, tiny_model, tmp_path):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=16)), "--name", "add")
    train = ("train", "--dataset", "add", "--model", str(tiny_model), "--method", "full", "--executor", "slurm")
    refused = cli(workspace, *train, "--wait")
    assert refused.returncode == 2 and "drop --wait" in refused.stderr
    queued = cli_json(workspace, *train, *("--max-steps", "4", "--batch-size", "2", "--devices", "cpu"))
    assert queued["status"] == "queued"
    services = Services.open(workspace)
    Supervisor(services.database, services.workspace).tick()  # this machine's supervisor leaves it to the cluster
    assert cli_json(workspace, "runs", "show", str(queued["id"]))["status"] == "queued"

    # What each node's srun line runs (docs/multinode.md): the same command on both, one process each.
    cmd = node_command(
        queued["id"], services.workspace, nnodes=2, nproc_per_node=1, endpoint=f"127.0.0.1:{free_port()}"
    )
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=300)[0].decode(errors="replace") for node in nodes]
    except subprocess.TimeoutExpired:
        for node in nodes:
            node.kill()
        stop_workers(workspace)
        raise
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    run = cli_json(workspace, "runs", "show", str(queued["id"]))
    assert run["status"] == "completed", run.get("reason")
    assert run["executor"] == "slurm" and run["workers"] == 2
    assert run["metrics"]["world_size"] == 2
    assert run["epoch"] == 1.0  # 4 steps x 2 rows x 2 ranks = the 16 rows once: each node saw its half
    assert "[rank 0]" in run["log_tail"] and "[rank 1]" in run["log_tail"]
    assert run["artifacts"][0]["kind"] == "model"
