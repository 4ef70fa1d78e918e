"""How a run's worker is started: the argument list the supervisor executes (never a shell).

One process for CPU or one GPU; `python -m torch.distributed.run --nproc-per-node N` (torchrun)
when a run asks for several processes: one per listed GPU (devices "cuda:0,1"), or `nproc` on
CPU (DDP over gloo). The supervisor owns *when* a worker starts; this module owns *how*.

    worker_command(7, {"devices": "cuda:0,1"}, ws)
    -> [python, -m, torch.distributed.run, --standalone, --nproc-per-node, 2, -m, backend.runs.worker, 7, ...]
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
