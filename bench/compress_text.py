"""Distillation and pruning of the support-ticket classifier (issue 19), through the CLI at default settings.

    .venv/bin/python bench/compress_text.py [--recover-steps 30] [--prune heads:0.3,neurons:0.3] [--threads 1]
    .venv/bin/python bench/compress_text.py --workspace DIR --measure 1,2,4 --threads 1   # time saved runs again

1. teacher: `train --task text-classification --dataset support_tickets` (all-MiniLM-L6-v2, 6 layers, defaults)
2. student: `train --task distill --teacher T --layers-from-teacher 2 --dataset support_tickets` (3 layers)
3. pruned: `compress T --prune heads:0.3,neurons:0.3 --recover-steps N --wait` (30% of the attention heads
   and of the MLP neurons, then a short run)
Then, in this one process: accuracy on the dataset's test split (rows no run saw) and the CPU latency of
one test row at a time, the models interleaved round by round so machine noise hits them alike.
Prints one JSON line. Targets: student within 2 points of the teacher and >= 1.7x faster per sample;
pruned + recovered within 2 points, smaller and faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend import cpu  # noqa: E402
from bench.classification_quality import cli  # noqa: E402 - the CLI as a user runs it, JSON out

cpu.wait_politely()  # before torch: idle OpenMP threads sleep instead of spinning against other work
ROUNDS = 9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--recover-steps", type=int, default=30)
    p.add_argument("--prune", default="heads:0.3,neurons:0.3")
    args = timing_options(p, "TEACHER,STUDENT,PRUNED")
    if args.measure:
        from backend.runs.queue import get_run
        from backend.services import Services

        ws = Path(args.workspace) / "ws"
        db = Services.open(ws).database
        ids = dict(zip(("teacher", "student", "pruned"), map(int, args.measure.split(",")), strict=True))
        runs = {k: {"id": i, "metrics": get_run(db, i).metrics or {}} for k, i in ids.items()}
        print(json.dumps(measure(ws, get_run(db, ids["teacher"]).dataset_id, runs, {})))
        return
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="bench-compress-")) / "ws"
    ds = cli(ws, "datasets", "add", str(ROOT / "examples" / "support_tickets.csv"), "--task", "text-classification")
    timed = {}
    start = time.perf_counter()
    teacher = cli(ws, "train", "--task", "text-classification", "--dataset", "support_tickets", "--wait")
    timed["teacher"] = time.perf_counter() - start
    start = time.perf_counter()
    student = cli(
        ws, "train", "--task", "distill", "--teacher", str(teacher["id"]), "--layers-from-teacher", "2",
        "--dataset", "support_tickets", "--wait",
    )  # fmt: skip
    timed["student"] = time.perf_counter() - start
    start = time.perf_counter()
    pruned = cli(
        ws, "compress", str(teacher["id"]), "--prune", args.prune, "--recover-steps", str(args.recover_steps),
        "--wait",
    )  # fmt: skip
    timed["pruned"] = time.perf_counter() - start
    runs = {"teacher": teacher, "student": student, "pruned": pruned}
    print(json.dumps(measure(ws, ds["id"], runs, timed)))


def timing_options(p: argparse.ArgumentParser, runs: str) -> argparse.Namespace:
    """--workspace, --threads and --measure (time saved runs again), parsed; torch gets the threads asked for."""
    p.add_argument("--workspace", help="default: a temporary folder")
    p.add_argument("--threads", type=int, help="torch threads while timing (default: torch's)")
    p.add_argument("--measure", metavar=runs, help="time these runs of --workspace again only")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return args


def median_ms(models: dict, samples: dict) -> dict[str, float]:
    """Each model's median milliseconds per sample over ROUNDS passes through its samples, one at a time, the
    models taking turns within each round (so the machine's noise hits them alike)."""
    import torch

    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.no_grad():
        for _ in range(ROUNDS):
            for k, m in models.items():
                t = time.perf_counter()
                for x in samples[k]:
                    m.logits(x)
                times[k].append((time.perf_counter() - t) / len(samples[k]) * 1000)
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def measure(ws: Path, dataset_id: int, runs: dict, timed: dict) -> dict:
    import torch

    from backend.data import load_rows
    from backend.export.sources import load_source, text_input
    from backend.metrics import classification_metrics
    from backend.runs.results import model_folder
    from backend.services import Services

    services = Services.open(ws)
    rows = load_rows(services.workspace, dataset_id, "test")
    models = {k: load_source("text-classification", *model_folder(services.database, services.workspace, r["id"]))
              for k, r in runs.items()}  # fmt: skip
    samples = {k: [text_input(m.tokenizer, [r["text"]], None, m.max_length) for r in rows] for k, m in models.items()}
    accuracy = {}
    with torch.no_grad():
        for k, m in models.items():
            index = {c: i for i, c in enumerate(m.labels)}
            predicted = [int(m.logits(x).argmax(-1)) for x in samples[k]]
            truth = [index[str(r["label"])] for r in rows]
            accuracy[k] = round(classification_metrics(truth, predicted, m.labels)["accuracy"], 4)
    ms = median_ms(models, samples)
    return {
        "test_rows": len(rows),
        "threads": torch.get_num_threads(),
        "test_accuracy": accuracy,
        "validation_accuracy": {k: r["metrics"].get("eval_accuracy") for k, r in runs.items()},
        "params": {k: sum(p.numel() for p in m.model.parameters()) for k, m in models.items()},
        "layers": {k: m.model.config.num_hidden_layers for k, m in models.items()},
        "ms_per_sample": ms,
        "speedup_vs_teacher": {k: round(ms["teacher"] / v, 2) for k, v in ms.items()},
        "pruned_metrics": {k: runs["pruned"]["metrics"].get(k) for k in ("params", "size_bytes", "original", "prune")},
        "wall_seconds": {k: round(v, 1) for k, v in timed.items()},
        "run_ids": {k: r["id"] for k, r in runs.items()},
    }


if __name__ == "__main__":
    main()
