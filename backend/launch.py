"""How a run's worker is started: the argument list the supervisor executes (never a shell).

One process for CPU or one GPU; `torchrun --nproc-per-node N` when a run asks for several
processes (DDP). The supervisor owns *when* a worker starts; this module owns *how*.
"""

from __future__ import annotations

import sys

from backend.workspace import Workspace


def worker_command(run_id: int, config: dict, workspace: Workspace) -> list[str]:
    """The worker's command line for run `run_id` whose RunConfig is `config` (as stored on the run)."""
    return [sys.executable, "-m", "backend.worker", str(run_id), "--workspace", str(workspace.root)]
