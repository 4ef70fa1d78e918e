"""Runs list with 10,000 runs: server time of one page, as the Runs tab and `runs list` ask for it.

    .venv/bin/python bench/runs_list_10k.py [--runs 10000] [--workspace /tmp/tb-bench-list]
    DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/runs_list_10k.py   # the same on PostgreSQL

Seeds N runs (mixed statuses, models, datasets, priorities, final losses) into a fresh workspace
once, then times each kind of page request 20 times and prints the median and the worst, in ms.
"Server time" is the Runs tab's own page handler (query + JSON + table frame), not the browser.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from backend.services import Services  # noqa: E402
from db import Dataset, Run, RunStatus  # noqa: E402
from db.models import utcnow  # noqa: E402

BUDGET_MS = 300.0


def seed(services: Services, n: int) -> None:
    with services.database.session() as s:
        have = s.scalar(select(func.count(Run.id))) or 0
        if have >= n:
            return
        datasets = []
        for i in range(5):
            ds = Dataset(
                name=f"bench-{i}", task="sft", format="alpaca", num_rows=100, columns=[], splits={}, sha256="0" * 64,
                source_file="x.json", stats={},
            )  # fmt: skip
            s.add(ds)
            datasets.append(ds)
        s.flush()
        rng = random.Random(0)
        statuses = list(RunStatus)
        config = {"dataset": "bench-0", "model": "SmolLM2-135M-Instruct", "method": "lora", "epochs": 4.0, "lr": 5e-4}
        rows = [
            {
                "name": f"run-{i:05d}",
                "status": rng.choice(statuses),
                "task": rng.choice(["sft", "sft", "text-classification"]),
                "model": rng.choice(["SmolLM2-135M-Instruct", "all-MiniLM-L6-v2", "/models/llama-tiny"]),
                "method": rng.choice(["lora", "full"]),
                "dataset_id": rng.choice(datasets).id,
                "config": {**config, "seed": i},
                "priority": rng.choice([0, 0, 0, 1, 5]),
                "metrics": {"final_loss": round(rng.uniform(0.2, 3.0), 4), "tokens_per_second": 900.0},
                "step": 40,
                "total_steps": 40,
                "epoch": 4.0,
                "created_at": utcnow(),
            }
            for i in range(have, n)
        ]
        for start in range(0, len(rows), 2000):
            s.execute(insert(Run), rows[start : start + 2000])


def timed(fn, repeat: int = 20) -> tuple[float, float]:
    fn()  # warm: the first query compiles statements and fills caches
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), max(samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--workspace", default="/tmp/tb-bench-list")
    args = p.parse_args()
    services = Services.open(args.workspace)
    t0 = time.perf_counter()
    seed(services, args.runs)
    print(f"{services.database.dialect}: {args.runs:,} runs seeded in {time.perf_counter() - t0:.1f} s")

    from webui.tabs.runs import page_of_runs

    cases = {
        "first page (newest, 25)": (None, None, None, None, "", "newest", 1, 25),
        "last page (offset 9,975)": (None, None, None, None, "", "newest", args.runs // 25, 25),
        "status=failed, page 3": ("failed", None, None, None, "", "newest", 3, 25),
        "search 'run-09' + dataset": (None, None, None, "bench-3", "run-09", "newest", 1, 25),
        "sort by final loss, 100": (None, None, None, None, "", "final_loss", 1, 100),
        "queue order (queued, positions)": ("queued", None, None, None, "", "priority", 1, 25),
    }
    worst = 0.0
    for label, values in cases.items():
        median, high = timed(lambda v=values: page_of_runs(services, *v))
        worst = max(worst, median)
        print(f"  {label:34s} median {median:7.1f} ms   worst {high:7.1f} ms")
    print(f"slowest median {worst:.1f} ms (budget {BUDGET_MS:.0f} ms): {'OK' if worst <= BUDGET_MS else 'OVER'}")
    return 0 if worst <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
