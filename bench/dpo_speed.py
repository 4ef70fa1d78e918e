"""DPO speed and memory: Tuneboard's default DPO run vs a plain TRL DPOTrainer script, same job, one machine.

    .venv/bin/python bench/dpo_speed.py                 # LoRA: Tuneboard vs plain TRL, then full-DPO memory
    .venv/bin/python bench/dpo_speed.py --steps 3 --skip-full

The job: examples/concise's 48 training pairs, the bundled SmolLM2-135M-Instruct, Tuneboard's defaults
(LoRA r16/alpha 32 on all linear layers, batch 8, learning rate 5e-4, beta 0.1, sigmoid loss, the
precision `auto` picks here), `--steps` optimizer steps. The plain side is bench/plain_dpo.py with the
same settings. Each side is a fresh process, run alternately (`--repeat`), so machine noise hits both:
whole-process wall time (imports and model load included) and tokens/s of the training call, where the
tokens are the non-padding tokens of prompt+chosen and prompt+rejected the steps see (the same count for
both sides). Tuneboard's worker counts only its own CPU lease, as the plain script takes every
core. Peak memory: each process's peak resident memory (its rusage), LoRA-DPO (the reference is
the adapter-disabled model) vs full-DPO (TRL keeps a second, frozen copy), both through Tuneboard.
Prints one JSON line per measurement and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "concise" / "train.jsonl"
MODEL = "SmolLM2-135M-Instruct"


def wall_and_peak(cmd: list[str]) -> tuple[float, float, str]:
    """Run `cmd`; its wall time and the peak resident memory of the largest process in its tree."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"failed: {' '.join(cmd)}\n{text[-2000:]}\n{err.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def pair_tokens(model_dir: Path, steps: int, batch: int) -> int:
    """Non-padding tokens of prompt+chosen and prompt+rejected over `steps` batches (rows cycle in order)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    per_row = []
    for r in rows:
        prompt = [{"role": "user", "content": r["prompt"]}]
        n = 0
        for answer in (r["chosen"], r["rejected"]):
            text = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
            n += len(tok(text, add_special_tokens=False)["input_ids"])
        per_row.append(n)
    mean = sum(per_row) / len(per_row)
    return round(mean * steps * batch)


def tuneboard(workspace: Path, steps: int, method: str) -> dict:
    cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), "train", "--task", "dpo"]
    cmd += ["--dataset", "concise", "--max-steps", str(steps), "--method", method, "--wait", "--json"]
    # The worker divides the cores among the CPU leases of every Tuneboard process of this user (backend/cpu.py);
    # a lease folder of its own makes it count only itself, like the plain script, which takes every core.
    os.environ["TUNEBOARD_CPU_LEASES"] = str(workspace.parent / "cpu-leases")
    seconds, peak, out = wall_and_peak(cmd)
    run = json.loads(out.splitlines()[-1])
    if run["status"] != "completed":
        sys.exit(f"Tuneboard run {run['id']} {run['status']}: {run.get('reason')}")
    metrics = run["metrics"]
    return {"wall_s": round(seconds, 1), "train_s": metrics["train_seconds"], "peak_rss_mb": round(peak),
            "worker_peak_mb": metrics.get("peak_memory_mb")}  # fmt: skip


def plain(model_dir: Path, steps: int, bf16: bool, full: bool = False) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "plain_dpo.py"), str(model_dir), str(DATA), "--steps", str(steps)]
    cmd += (["--bf16"] if bf16 else []) + (["--full"] if full else [])
    seconds, peak, out = wall_and_peak(cmd)
    got = json.loads(out.splitlines()[-1])
    return {"wall_s": round(seconds, 1), "train_s": got["train_seconds"], "peak_rss_mb": round(peak)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per run (6 = one epoch of 48 pairs)")
    p.add_argument("--repeat", type=int, default=1, help="alternate the two sides this many times")
    p.add_argument("--skip-full", action="store_true", help="skip the full-DPO memory run")
    args = p.parse_args()

    sys.path.insert(0, str(ROOT))
    from backend.devices import resolve_precision
    from backend.models.catalog import resolve_model
    from backend.workspace import Workspace

    bf16 = resolve_precision("auto", "cpu") == "bf16"
    with tempfile.TemporaryDirectory(prefix="tb-dpo-speed-") as tmp:
        ws = Path(tmp) / "ws"
        # the training split alone: neither side evaluates (the plain script has no eval set)
        add = [sys.executable, "-m", "backend.cli", "--workspace", str(ws), "datasets", "add", str(DATA)]
        subprocess.run([*add, "--name", "concise", "--json"], cwd=ROOT, check=True, capture_output=True)
        model_dir = resolve_model(MODEL, Workspace.resolve(ws).models_dir, False)
        tokens = pair_tokens(model_dir, args.steps, 8)
        rows = {"tuneboard": [], "plain": []}
        for _ in range(args.repeat):
            rows["tuneboard"].append(tuneboard(ws, args.steps, "lora"))
            print(json.dumps({"side": "tuneboard lora", **rows["tuneboard"][-1]}), flush=True)
            rows["plain"].append(plain(model_dir, args.steps, bf16))
            print(json.dumps({"side": "plain TRL lora", **rows["plain"][-1]}), flush=True)
        best = {k: min(v, key=lambda r: r["train_s"]) for k, v in rows.items()}
        summary = {
            "steps": args.steps,
            "precision": "bf16" if bf16 else "fp32",
            "tokens": tokens,
            "tokens_per_s": {k: round(tokens / r["train_s"], 1) for k, r in best.items()},
            "tokens_per_s_ratio": round(best["plain"]["train_s"] / best["tuneboard"]["train_s"], 2),
            "wall_ratio": round(
                min(r["wall_s"] for r in rows["plain"]) / min(r["wall_s"] for r in rows["tuneboard"]), 2
            ),
        }
        if not args.skip_full:
            full = tuneboard(ws, args.steps, "full")
            print(json.dumps({"side": "tuneboard full", **full}), flush=True)
            # the worker's own peak resident memory (it records it in the run's metrics)
            summary["worker_peak_mb"] = {"lora": best["tuneboard"]["worker_peak_mb"], "full": full["worker_peak_mb"]}
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
