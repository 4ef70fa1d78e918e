"""How many search trials at once the 2-core machine sustains on a local Ray cluster (issue 18).

    .venv/bin/python bench/ray_trials.py [--trials 4] [--steps 8] [--plan 1:1,2:1,4:0.5]

Starts a Ray head on 127.0.0.1 with 2 CPUs (bench/ray_overhead.py's, killed at the end), a fresh
workspace and the tests' tiny 2-layer Llama, then runs the same grid search (4 learning rates, full
fine-tune, --max-steps S) once per plan entry PARALLEL:CPUS, exactly as a user types it:

    search --space space.yaml --sampler grid --no-prune --trials 4 --executor ray --parallel P
           --worker-cpus C ... --wait

Each trial is a Ray job (Ray Train, 1 worker of C CPUs); Ray starts as many as the head's 2 CPUs hold.
Prints, per entry, the wall time of the whole command, trials per minute, and the most trials seen
running at once (from the runs' start and end times).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ray_overhead import ray_head  # noqa: E402
from bench.runs_first_step import tiny_model  # noqa: E402

RATES = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016]


def cli(ws: Path, *args: str, env: dict) -> dict:
    cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(ws), *args, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    live = best = 0
    for _, step in edges:
        live += step
        best = max(best, live)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--plan", default="1:1,2:1,4:0.5", help="PARALLEL:CPUS_PER_TRIAL entries")
    args = p.parse_args()

    from backend.data import import_file
    from backend.runs.queue import get_run
    from backend.services import Services
    from tests.conftest import write_alpaca

    tmp = Path(tempfile.mkdtemp(prefix="tb-ray-trials-"))
    rows = []
    try:
        model = tiny_model(tmp / "tiny")
        space = tmp / "space.yaml"
        space.write_text(f"learning_rate: {{type: categorical, choices: {RATES[: args.trials]}}}\n")
        with ray_head(num_cpus=2) as address:
            env = {**os.environ, "TUNEBOARD_RAY_ADDRESS": address, "TUNEBOARD_MODELS_DIR": str(tmp / "models")}
            for entry in args.plan.split(","):
                parallel, cpus = entry.split(":")
                ws = tmp / f"ws-{parallel}-{cpus}"
                services = Services.open(ws)
                import_file(services.database, services.workspace, write_alpaca(tmp / "d.json", n=32), name="d")
                t0 = time.monotonic()
                out = cli(
                    ws, "search", "--space", str(space), "--sampler", "grid", "--no-prune", "--metric",
                    "train_loss", "--trials", str(args.trials), "--dataset", "d", "--model", str(model),
                    "--method", "full", "--batch-size", "2", "--max-steps", str(args.steps), "--executor", "ray",
                    "--parallel", parallel, "--worker-cpus", cpus, "--wait", env=env,
                )  # fmt: skip
                wall = time.monotonic() - t0
                report = cli(ws, "search", "show", str(out["id"]), env=env)
                runs = [get_run(services.database, t["run_id"]) for t in report["trials"]]
                spans = [(r.started_at.timestamp(), r.finished_at.timestamp()) for r in runs]
                states = [t["state"] for t in report["trials"]]
                row = {
                    "parallel": int(parallel),
                    "cpus_per_trial": float(cpus),
                    "trials": len(runs),
                    "complete": states.count("complete"),
                    "wall_s": round(wall, 1),
                    "trials_per_min": round(len(runs) / wall * 60, 2),
                    "most_at_once": most_at_once(spans),
                    "mean_trial_s": round(sum(e - s for s, e in spans) / len(spans), 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        print("\n| parallel | CPUs per trial | trials done | wall | trials/min | most at once | mean trial |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['parallel']} | {r['cpus_per_trial']:g} | {r['complete']}/{r['trials']} | {r['wall_s']} s | "
                f"{r['trials_per_min']} | {r['most_at_once']} | {r['mean_trial_s']} s |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
