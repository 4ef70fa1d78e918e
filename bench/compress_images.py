"""Distillation of the digits classifier (issue 19): a ResNet-50 teacher, then ResNet-18 and
MobileNetV3-small students, each against the same student trained alone; CLI, default settings.

    .venv/bin/python bench/compress_images.py [--students resnet18,mobilenet_v3_small] [--threads 1]
    .venv/bin/python bench/compress_images.py --workspace DIR --measure T,A1,D1,A2,D2 --threads 1

1. teacher: `train --task image-classification --dataset digits --model resnet50 --epochs 15` (trained from
   random weights offline, a 5-epoch ResNet-50 is no better than ResNet-18 alone: nothing to distil)
2. for each student S: `train --task image-classification --dataset digits --model S` (alone) and
   `train --task distill --teacher T --model S --dataset digits` (distilled)
Then, in this one process: accuracy on the dataset's test split (rows no run saw), parameters, size on
disk, and the CPU latency of one test image at a time (models interleaved round by round, so machine noise
hits them alike). Prints one JSON line. Targets: each distilled student at least as accurate as the same
student alone, and within 1 point of the teacher.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from backend import cpu  # noqa: E402
from bench.classification_quality import cli  # noqa: E402 - the CLI as a user runs it, JSON out
from bench.compress_text import median_ms, timing_options  # noqa: E402

cpu.wait_politely()  # before torch: idle OpenMP threads sleep instead of spinning against other work
TASK = "image-classification"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", default="resnet18,mobilenet_v3_small")
    p.add_argument("--teacher-epochs", default="15", help="a 5-epoch ResNet-50 is no better than ResNet-18 alone")
    args = timing_options(p, "TEACHER,ALONE1,DISTILLED1,...")
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="bench-compress-images-")) / "ws"
    students = args.students.split(",")
    names = ["teacher"] + [f"{s} {kind}" for s in students for kind in ("alone", "distilled")]
    if args.measure:
        from backend.runs.queue import get_run
        from backend.services import Services

        db = Services.open(ws).database
        ids = dict(zip(names, map(int, args.measure.split(",")), strict=True))
        runs = {k: {"id": i, "metrics": get_run(db, i).metrics or {}} for k, i in ids.items()}
        print(json.dumps(measure(ws, get_run(db, ids["teacher"]).dataset_id, runs, {})))
        return
    zipped = ws.parent / "digits.zip"
    script = [sys.executable, str(ROOT / "examples" / "digits_to_imagefolder.py"), "--out", str(zipped)]
    subprocess.run(script, check=True, capture_output=True)
    ds = cli(ws, "datasets", "add", str(zipped), "--task", TASK, "--name", "digits")
    runs, timed = {}, {}

    def train(name: str, *settings: str) -> None:
        start = time.perf_counter()
        runs[name] = cli(ws, "train", "--dataset", "digits", "--wait", *settings)
        timed[name] = time.perf_counter() - start
        if runs[name]["status"] != "completed":
            raise SystemExit(f"{name}: {runs[name]['status']} ({runs[name].get('reason')})")

    train("teacher", "--task", TASK, "--model", "resnet50", "--epochs", args.teacher_epochs)
    for s in students:
        train(f"{s} alone", "--task", TASK, "--model", s)
        train(f"{s} distilled", "--task", "distill", "--teacher", str(runs["teacher"]["id"]), "--model", s)
    print(json.dumps(measure(ws, ds["id"], runs, timed)))


def measure(ws: Path, dataset_id: int, runs: dict, timed: dict) -> dict:
    import torch

    from backend.data import load_rows
    from backend.export.sources import load_source
    from backend.runs.results import model_folder
    from backend.services import Services
    from backend.tasks.image_data import decode, eval_transforms

    services = Services.open(ws)
    rows = load_rows(services.workspace, dataset_id, "test")
    folders = {k: model_folder(services.database, services.workspace, r["id"]) for k, r in runs.items()}
    models = {k: load_source(TASK, *folder) for k, folder in folders.items()}
    samples = {
        k: [{"pixel_values": eval_transforms(m.spec)(decode(r["image"], r["file"]))[None]} for r in rows]
        for k, m in models.items()
    }
    accuracy = {}
    with torch.no_grad():
        for k, m in models.items():
            predicted = [m.labels[int(m.logits(x).argmax(-1))] for x in samples[k]]
            right = sum(label == str(r["label"]) for label, r in zip(predicted, rows, strict=True))
            accuracy[k] = round(right / len(rows), 4)
    ms = median_ms(models, samples)
    size = {k: sum(f.stat().st_size for f in (f[1] or f[0]).rglob("*") if f.is_file()) for k, f in folders.items()}
    return {
        "test_rows": len(rows),
        "threads": torch.get_num_threads(),
        "test_accuracy": accuracy,
        "validation_accuracy": {k: r["metrics"].get("eval_accuracy") for k, r in runs.items()},
        "params_m": {k: round(sum(p.numel() for p in m.model.parameters()) / 1e6, 2) for k, m in models.items()},
        "size_mb": {k: round(v / 2**20, 1) for k, v in size.items()},
        "ms_per_image": ms,
        "speedup_vs_teacher": {k: round(ms["teacher"] / v, 2) for k, v in ms.items()},
        "wall_seconds": {k: round(v, 1) for k, v in timed.items()},
        "run_ids": {k: r["id"] for k, r in runs.items()},
    }


if __name__ == "__main__":
    main()
