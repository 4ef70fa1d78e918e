"""SFT speed: Tuneboard's default LoRA run vs a hand-written Trainer script, same job, one machine.

    .venv/bin/python bench/sft_speed.py [--data examples/instructions.json] [--reps 1]

The job (from ANCHORS.md): one epoch, LoRA r8 on all linear layers, batch 4, cutoff 256, on the
bundled SmolLM2-135M-Instruct. Both sides are timed as whole processes (model load included), run
alternately so machine noise hits both; the model is converted to safetensors once beforehand.
Prints a markdown table for docs/benchmarks.md.
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
JOB = ["--lora-rank", "8", "--lora-alpha", "16", "--batch-size", "4", "--cutoff-len", "256", "--epochs", "1"]
VARIANTS = {
    "Tuneboard defaults (auto precision: bf16 here; length-grouped batches)": [],
    "Tuneboard, fp32, packing": ["--precision", "fp32"],
    "Tuneboard, bf16, packed rows": ["--packing"],
}


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "examples" / "instructions.json"))
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--variants", action="store_true", help="also time fp32 and unpacked Tuneboard runs")
    args = p.parse_args()

    sys.path.insert(0, str(ROOT))
    from backend.catalog import resolve_model
    from backend.workspace import Workspace

    ws = Workspace.resolve(tempfile.mkdtemp(prefix="tb-bench-"))
    model_dir = resolve_model("SmolLM2-135M-Instruct", ws.models_dir)
    cli = [sys.executable, "-m", "backend.cli", "--workspace", str(ws.root)]
    timed([*cli, "datasets", "add", args.data, "--name", "bench", "--json"])

    variants = VARIANTS if args.variants else dict(list(VARIANTS.items())[:1])
    results: dict[str, list[tuple[float, dict]]] = {"plain": []}
    for _ in range(args.reps):
        seconds, out = timed([sys.executable, "bench/plain_trainer.py", str(model_dir), args.data])
        results["plain"].append((seconds, json.loads(out.strip().splitlines()[-1])))
        for name, extra in variants.items():
            seconds, out = timed([*cli, "train", "--dataset", "bench", *JOB, *extra, "--wait", "--json"])
            results.setdefault(name, []).append((seconds, json.loads(out)["metrics"]))

    plain = min(s for s, _ in results["plain"])
    tokens = results["plain"][0][1]["tokens"]
    print(f"{tokens} non-padding tokens per epoch; best of {args.reps}; whole-process wall time\n")
    print("| run | wall time | vs plain | train-loop tokens/s |")
    print("|---|---|---|---|")
    plain_tps = results["plain"][0][1]["tokens_per_second"]
    print(f"| plain Trainer + peft, fp32, padded | {plain:.1f} s | 1.00x | {plain_tps} |")
    for name in variants:
        best, metrics = min(results[name], key=lambda r: r[0])
        print(f"| {name} | {best:.1f} s | {plain / best:.2f}x | {metrics['tokens_per_second']} |")


if __name__ == "__main__":
    main()
