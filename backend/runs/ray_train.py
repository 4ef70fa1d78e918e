"""A run's job on a Ray cluster: Ray Train's TorchTrainer starts N workers, each running the run's worker.

    python -m backend.runs.ray_train RUN_ID --workspace DIR --workers 2 --worker-cpus 1 --worker-gpus 0

Submitted by backend.runs.ray_jobs (the run is already claimed, `running`). Every Ray Train worker runs
backend.runs.worker, the same task code and Trainer as a run on this machine, in the process group Ray Train
set up (gloo on CPUs, NCCL on GPUs), with RANK / WORLD_SIZE / LOCAL_RANK set as torchrun sets them: rank 0
writes the curve, progress, heartbeat and outcome to the database; the model, checkpoints and log go to the
run folder of the workspace, which every node mounts at the same path (Ray Train's own state goes to
workspace/ray). A resumed run continues from its run folder's last checkpoint, as a local one does.
"""

from __future__ import annotations

import argparse
import os
import sys

from backend.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.runs.ray_train", description=__doc__)
    parser.add_argument("run_id", type=int)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-cpus", type=float, default=1.0)
    parser.add_argument("--worker-gpus", type=float, default=0.0)
    args = parser.parse_args(argv)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    root = Workspace.resolve(args.workspace).root
    resources = {"CPU": args.worker_cpus, **({"GPU": args.worker_gpus} if args.worker_gpus else {})}
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"run_id": args.run_id, "workspace": str(root)},
        scaling_config=ScalingConfig(
            num_workers=args.workers, use_gpu=args.worker_gpus > 0, resources_per_worker=resources
        ),
        run_config=RunConfig(name=f"run-{args.run_id}", storage_path=str(root / "ray")),
    )
    result = trainer.fit()  # raises when a worker failed (the run's status is already written by rank 0)
    return 0 if result.error is None else 1


def train_worker(config: dict) -> None:
    """One Ray Train worker: the run's worker, as torchrun would start it (its rank in the environment)."""
    import ray.train

    from backend.runs import worker

    context = ray.train.get_context()
    node = ray.get_runtime_context().get_node_id()  # in the job's log: which node each rank trained on
    print(f"tuneboard: rank {context.get_world_rank()} of {context.get_world_size()} on node {node}", flush=True)
    os.environ.update(
        RANK=str(context.get_world_rank()),
        WORLD_SIZE=str(context.get_world_size()),
        LOCAL_RANK=str(context.get_local_rank()),
        LOCAL_WORLD_SIZE=str(context.get_local_world_size()),
    )
    code = worker.main([str(config["run_id"]), "--workspace", config["workspace"]])
    if code:
        raise RuntimeError(f"the run's worker (rank {context.get_world_rank()}) exited with {code}; see log.txt")


if __name__ == "__main__":
    sys.exit(main())
