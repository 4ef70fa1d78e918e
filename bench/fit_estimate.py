"""The fit estimate (`models fit`) against the peak memory a real run reaches, through the CLI.

    .venv/bin/python bench/fit_estimate.py            # every case, one JSON line each, then a table
    .venv/bin/python bench/fit_estimate.py --only minilm

Each case trains 2 steps (`train --max-steps 2 --wait`) on rows long enough that every example is cut
at cutoff_len (the estimate's worst case), and reads the peak the worker records (metrics.peak_memory_mb:
the process's peak resident memory on a CPU, torch's peak allocation on CUDA). Goal: within 25%.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "judge",
    "its",
    "form",
]

CASES = {
    "smollm2-lora-b2": ("sft", "SmolLM2-135M-Instruct", "lora", 2, 256),
    "smollm2-lora-b8": ("sft", "SmolLM2-135M-Instruct", "lora", 8, 256),
    "smollm2-full-b2": ("sft", "SmolLM2-135M-Instruct", "full", 2, 256),
    "smollm2-full-b8": ("sft", "SmolLM2-135M-Instruct", "full", 8, 256),
    "minilm-full-b8": ("text-classification", "all-MiniLM-L6-v2", "full", 8, 128),
    "minilm-full-b32": ("text-classification", "all-MiniLM-L6-v2", "full", 32, 128),
    "resnet18-full-b16": ("image-classification", "resnet18", "full", 16, 64),  # cutoff: the image size
    "resnet18-full-b64": ("image-classification", "resnet18", "full", 64, 64),
}


def cli(workspace: Path, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def long_rows(folder: Path) -> tuple[Path, Path]:
    """An alpaca file and a classification CSV whose rows all exceed 256 tokens."""
    text = lambda i: " ".join(WORDS[(i + k) % len(WORDS)] for k in range(400))  # noqa: E731
    sft = folder / "long.json"
    sft.write_text(json.dumps([{"instruction": f"Repeat {i}", "input": "", "output": text(i)} for i in range(64)]))
    clf = folder / "long.csv"
    with open(clf, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([text(i), "ab"[i % 2]] for i in range(96))
    return sft, clf


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", default="", help="cases whose name contains this")
    args = p.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="tb-fit-"))
    sft, clf = long_rows(workspace)
    cli(workspace, "datasets", "add", str(sft), "--name", "long-sft")
    cli(workspace, "datasets", "add", str(clf), "--name", "long-clf", "--val-ratio", "0", "--test-ratio", "0")
    if "resnet" in args.only or not args.only:
        digits = workspace / "digits.zip"
        subprocess.run(
            [sys.executable, "examples/digits_to_imagefolder.py", "--out", str(digits)], cwd=ROOT, check=True
        )
        cli(workspace, "datasets", "add", str(digits), "--name", "digits", "--task", "image-classification")
    rows = []
    for name, (task, model, method, batch, cutoff) in CASES.items():
        if args.only not in name:
            continue
        dataset = {"sft": "long-sft", "text-classification": "long-clf"}.get(task, "digits")
        settings = [
            "--model",
            model,
            "--task",
            task,
            "--method",
            method,
            "--batch-size",
            str(batch),
            "--val-ratio",
            "0",
        ]
        size = ["--image-size", str(cutoff)] if task == "image-classification" else ["--cutoff-len", str(cutoff)]
        settings += size
        fit = cli(workspace, "models", "fit", *settings)
        run = cli(workspace, "train", "--dataset", dataset, *settings, "--max-steps", "2", "--wait")
        peak = run["metrics"]["peak_memory_mb"]
        row = {"case": name, "estimate_mb": fit["estimate_mb"], "peak_mb": round(peak), "parts": fit["parts"]}
        row["error_pct"] = round(100 * (fit["estimate_mb"] - peak) / peak, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| case | estimate (MB) | measured peak (MB) | error |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['estimate_mb']} | {r['peak_mb']} | {r['error_pct']:+.1f}% |")


if __name__ == "__main__":
    main()
