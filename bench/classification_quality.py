"""Results quality of the classification tasks with default settings, through the CLI as a user runs it.

    .venv/bin/python bench/classification_quality.py              # both
    .venv/bin/python bench/classification_quality.py --only digits

- digits: scikit-learn's 8x8 handwritten digits rendered to an image-folder zip
  (examples/digits_to_imagefolder.py), `train --task image-classification` with nothing else set
  (resnet18, auto image size, 5 epochs). Goal: >= 95% validation accuracy in <= 5 minutes.
- tickets: examples/support_tickets.csv, `train --task text-classification` with nothing else
  set (all-MiniLM-L6-v2, full fine-tuning, 5 epochs). Goal: >= 90% validation accuracy.

Each run's saved model is also scored on the dataset's test split, which training never sees.
Prints one JSON line per task; the wall time covers the whole `train --wait` command.
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


def cli(workspace: Path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), *args, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-2000:]}")
    return json.loads(proc.stdout)


def test_accuracy(workspace: Path, run: dict, dataset_id: int, task: str) -> float:
    """Accuracy of the run's saved model on the dataset's test split."""
    import torch

    from backend.data import load_rows
    from backend.workspace import Workspace

    rows = load_rows(Workspace.resolve(workspace), dataset_id, "test")
    folder = workspace / "runs" / str(run["id"]) / "model"
    right = 0
    with torch.no_grad():
        if task == "image-classification":
            from backend.tasks import image_classification as ic
            from backend.tasks.image_data import decode, eval_transforms

            model, spec = ic.load_model(folder)
            tf = eval_transforms(spec)
            for r in rows:
                logits = model(tf(decode(r["image"], r["file"]))[None]).logits
                right += spec["classes"][int(logits.argmax())] == r["label"]
        else:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
            tokenizer = AutoTokenizer.from_pretrained(folder)
            for r in rows:
                logits = model(**tokenizer(r["text"], return_tensors="pt")).logits
                right += model.config.id2label[int(logits.argmax())] == r["label"]
    return right / len(rows)


def bench(name: str, workspace: Path) -> dict:
    if name == "digits":
        zipped = workspace.parent / "digits.zip"
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "digits_to_imagefolder.py"), "--out", str(zipped)], check=True
        )
        source, task = zipped, "image-classification"
    else:
        source, task = ROOT / "examples" / "support_tickets.csv", "text-classification"
    ds = cli(workspace, "datasets", "add", str(source), "--task", task, "--name", name)
    t0 = time.monotonic()
    run = cli(workspace, "train", "--task", task, "--dataset", name, "--wait")
    wall = time.monotonic() - t0
    m = run["metrics"]
    return {
        "task": task,
        "dataset": name,
        "splits": ds["splits"],
        "status": run["status"],
        "model": run["model"],
        "settings": {k: run["config"][k] for k in ("method", "epochs", "batch_size", "image_size", "image_flip")},
        "learning_rate": run["config"]["learning_rate"] or "task default",
        "wall_seconds": round(wall, 1),
        "train_seconds": m.get("train_seconds"),
        "eval_accuracy": m.get("eval_accuracy"),
        "eval_f1_macro": m.get("eval_f1_macro"),
        "test_accuracy": round(test_accuracy(workspace, run, ds["id"], task), 4),
        "precision": m.get("precision"),
        "weights": m.get("weights"),
        "image_size": m.get("image_size"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["digits", "tickets"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in [args.only] if args.only else ["digits", "tickets"]:
            print(json.dumps(bench(name, Path(tmp) / f"ws-{name}")), flush=True)


if __name__ == "__main__":
    main()
