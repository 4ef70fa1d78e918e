"""How a run's worker is started: the argument list the supervisor executes (never a shell).

One process for CPU or one GPU; `python -m torch.distributed.run --nproc-per-node N` (torchrun)
when a run asks for several processes: one per listed GPU (devices "cuda:0,1"), or `nproc` on
CPU (DDP over gloo). The supervisor owns *when* a worker starts; this module owns *how*.

    worker_command(7, {"devices": "cuda:0,1"}, ws)
    -> [python, -m, torch.distributed.run, --standalone, --nproc-per-node, 2, -m, backend.runs.worker, 7, ...]

Several machines (Slurm, or any launcher): a run queued with `--executor slurm` waits for its workers,
started on each node with `node_command` (torchrun's c10d rendezvous on the first node); the first
worker to start claims the run (docs/multinode.md).
"""

from __future__ import annotations

import sys

from backend.config import RunConfig
from backend.workspace import Workspace


def worker_processes(config: dict) -> int:
    """How many processes the run of this stored RunConfig trains in (1 unless it asks for DDP)."""
    return RunConfig.from_dict(config).world_size if config else 1


def worker_command(run_id: int, config: dict, workspace: Workspace) -> list[str]:
    """The worker's command line for run `run_id` whose RunConfig is `config` (as stored on the run)."""
    worker = ["-m", "backend.runs.worker", str(run_id), "--workspace", str(workspace.root)]
    processes = worker_processes(config)
    if processes == 1:
        return [sys.executable, *worker]
    # --standalone: a rendezvous on this machine with a free port, so two runs never collide.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), *worker]


def node_command(
    run_id: int, workspace: Workspace, *, nnodes: int, nproc_per_node: int, endpoint: str, rdzv_id: str = ""
) -> list[str]:
    """One node's command line for run `run_id` trained on `nnodes` machines (the same on every node):
    torchrun joins the others at `endpoint` (host:port on the first node) and each worker claims the run."""
    worker = ["-m", "backend.runs.worker", str(run_id), "--workspace", str(workspace.root), "--claim"]
    return [
        sys.executable,
        *("-m", "torch.distributed.run", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc_per_node)),
        *("--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", rdzv_id or f"tuneboard-run-{run_id}"),
        *worker,
    ]
