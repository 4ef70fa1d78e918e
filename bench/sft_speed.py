"""SFT speed: Tuneboard runs vs a hand-written Trainer script, same job, one machine, one process each.

    .venv/bin/python bench/sft_speed.py                 # Tuneboard's default run vs the plain fp32 script
    .venv/bin/python bench/sft_speed.py --compare       # LoRA and full, fp32 and bf16, same settings both sides
    .venv/bin/python bench/sft_speed.py --compare --only full --rows 24   # two rows, a shorter job
    .venv/bin/python bench/sft_speed.py --variants      # default run, fp32, packing

The job (from ANCHORS.md): one epoch over examples/instructions.json, LoRA r8 on all linear layers
(or full fine-tuning), batch 4, cutoff 256, on the bundled SmolLM2-135M-Instruct. Each side is a
fresh process (model load included in the wall time), run alternately so machine noise hits both;
tokens/s counts the non-padding tokens of the epoch over the training loop's time. MFU divides the
achieved FLOP/s (6 x params per token for full fine-tuning, 4 x for LoRA: no weight gradients for
the frozen base) by the matmul peak that bench/matmul_peak.py measures just before, in the same
precision. Prints markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOB = ["--lora-rank", "8", "--lora-alpha", "16", "--batch-size", "4", "--cutoff-len", "256", "--epochs", "1"]
VARIANTS = {
    "Tuneboard defaults (auto precision: bf16 here; length-grouped batches)": [],
    "Tuneboard, `--precision fp32`": ["--precision", "fp32"],
    "Tuneboard, `--packing`": ["--packing"],
}
COMPARE = [("lora", "fp32"), ("lora", "bf16"), ("full", "fp32"), ("full", "bf16")]


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "examples" / "instructions.json"))
    p.add_argument("--variants", action="store_true", help="also time fp32 and packed Tuneboard runs")
    p.add_argument("--compare", action="store_true", help="LoRA/full x fp32/bf16 against the plain script")
    p.add_argument("--rows", type=int, default=0, help="only the first N rows (a shorter job on a busy machine)")
    p.add_argument("--only", choices=["lora", "full"], help="with --compare: only this method's two rows")
    args = p.parse_args()

    sys.path.insert(0, str(ROOT))
    from backend.models.catalog import resolve_model
    from backend.workspace import Workspace

    ws = Workspace.resolve(tempfile.mkdtemp(prefix="tb-bench-"))
    atexit.register(shutil.rmtree, ws.root, True)  # runs and checkpoints are GBs; nothing is kept
    if args.rows:
        subset = ws.root / "data.json"
        subset.write_text(json.dumps(json.loads(Path(args.data).read_text(encoding="utf-8"))[: args.rows]))
        args.data = str(subset)
    model_dir = resolve_model("SmolLM2-135M-Instruct", ws.models_dir)
    cli = [sys.executable, "-m", "backend.cli", "--workspace", str(ws.root)]
    timed([*cli, "datasets", "add", args.data, "--name", "bench", "--json"])
    peak = json.loads(timed([sys.executable, "bench/matmul_peak.py"])[1])
    print(f"matmul peak just before: fp32 {peak['fp32']} GFLOP/s, bf16 {peak['bf16']} GFLOP/s\n", flush=True)

    def plain(*flags: str) -> tuple[float, dict]:
        seconds, out = timed([sys.executable, "bench/plain_trainer.py", str(model_dir), args.data, *flags])
        return seconds, json.loads(out.strip().splitlines()[-1])

    def tuneboard(*flags: str) -> tuple[float, dict]:
        seconds, out = timed([*cli, "train", "--dataset", "bench", *JOB, *flags, "--wait", "--json"])
        return seconds, json.loads(out)["metrics"]

    if args.compare:
        rows = compare(plain, tuneboard, [job for job in COMPARE if args.only in (None, job[0])])
        after = json.loads(timed([sys.executable, "bench/matmul_peak.py"])[1])
        # The larger of the two peaks: a busy moment during one measurement must not inflate MFU.
        peak = {k: max(peak[k], after[k]) for k in ("fp32", "bf16")}
        print(f"\nmatmul peak just after: fp32 {after['fp32']}, bf16 {after['bf16']} GFLOP/s; MFU uses the larger\n")
        print_compare(rows, peak)
        return
    base_s, base = plain()
    print(f"{base['tokens']} non-padding tokens per epoch; whole-process wall time\n")
    print("| run | wall time | vs plain | train-loop tokens/s | peak RSS |")
    print("|---|---|---|---|---|")
    print(f"| plain Trainer + peft, fp32, padded | {base_s:.1f} s | 1.00x | {base['tokens_per_second']} | "
          f"{base['peak_memory_mb']:.0f} MB |")  # fmt: skip
    for name, extra in (VARIANTS if args.variants else dict(list(VARIANTS.items())[:1])).items():
        seconds, m = tuneboard(*extra)
        print(f"| {name} | {seconds:.1f} s | {base_s / seconds:.2f}x | {m['tokens_per_second']} | "
              f"{m['peak_memory_mb']:.0f} MB |")  # fmt: skip


def compare(plain, tuneboard, jobs: list[tuple[str, str]]) -> list[tuple]:
    """Same method and precision on both sides, alternated; prints each pair as it ends."""
    rows = []
    for method, precision in jobs:
        flags = [*(["--full"] if method == "full" else []), *(["--bf16"] if precision == "bf16" else [])]
        p_s, p = plain(*flags)
        t_s, t = tuneboard("--method", method, "--precision", precision)
        print(f"{method} {precision}: plain {p['tokens_per_second']} tok/s, Tuneboard {t['tokens_per_second']} tok/s",
              flush=True)  # fmt: skip
        rows.append((method, precision, p_s, p, t_s, t))
    return rows


def print_compare(rows: list[tuple], peak: dict) -> None:
    """The markdown table: tokens/s ratio, MFU against the measured peak, peak memory."""
    print("| job | plain tokens/s | Tuneboard tokens/s | ratio | wall plain / Tuneboard | MFU plain / Tuneboard "
          "| peak RSS plain / Tuneboard |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for method, precision, p_s, p, t_s, t in rows:
        params = t["total_params"] - (t["trainable_params"] if method == "lora" else 0)
        flops = (6 if method == "full" else 4) * params
        mfu = [100 * m["tokens_per_second"] * flops / (peak[precision] * 1e9) for m in (p, t)]
        ratio = t["tokens_per_second"] / p["tokens_per_second"]
        print(
            f"| {method} {precision} | {p['tokens_per_second']} | {t['tokens_per_second']} | **{ratio:.2f}x** "
            f"| {p_s:.0f} s / {t_s:.0f} s | {mfu[0]:.0f}% / {mfu[1]:.0f}% "
            f"| {p['peak_memory_mb']:.0f} / {t['peak_memory_mb']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
