"""Quality of the preference and RL tasks with default settings, through the CLI as a user runs it.

    .venv/bin/python bench/preference_quality.py --only dpo     # examples/concise, bundled SmolLM2
    .venv/bin/python bench/preference_quality.py --only grpo    # examples/arithmetic

- dpo: `train --task dpo --dataset concise` with nothing else set. Held-out preference accuracy:
  before, the share of the 16 validation pairs where the base model gives `chosen` a higher mean
  per-token log-probability than `rejected`; after, TRL's eval_rewards/accuracies (the trained
  policy's implicit reward prefers `chosen`). Goal: >= 90%. Also the greedy answers to the held-out
  prompts, before and after: their mean length, and how many are direct (at most 3x the chosen answer's
  length + 20 characters: the preferred style is "Paris.", not a preamble); `--no-answers` skips them.
- grpo: the two-stage recipe of examples/arithmetic/README.md: `train --task sft` for 20 steps on 24
  formatted training answers (examples/arithmetic/format_demos.py), then `train --task grpo --from-run
  SFT --reward format --reward numeric@2 --max-steps 30`. Format compliance (the whole reply is
  <answer>N</answer>) and reference matches of greedy answers to the 24 held-out prompts: base model,
  after the warm-up, after GRPO. Goal: format >= 80% in <= 20 minutes (both train commands).

Prints one JSON line per task; wall time covers the whole `train --wait` commands.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "SmolLM2-135M-Instruct"
SFT_STEPS, GRPO_STEPS = 20, 30  # examples/arithmetic/README.md

from backend import cpu  # noqa: E402

cpu.wait_politely()  # before torch: idle OpenMP threads sleep (a busy machine made greedy answers 30x slower)


def cli(workspace: Path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), *args, "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def _load(folder: Path, adapter: Path | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def mean_logp(model, tok, prompt: list[dict], answer: str) -> float:
    import torch

    head = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=False)
    p_ids = tok(head, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([tok(full, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logp[len(p_ids) - 1 :].mean())


def greedy(model, tok, rows: list[dict], max_new: int) -> list[str]:
    from backend.tasks.causal_lm import generate_answers

    chats = [{"messages": [*r["messages"], {"role": "assistant", "content": "x"}]} for r in rows]
    return generate_answers(model, tok, chats, max_new_tokens=max_new)[1]


def dpo(ws: Path, answers: bool) -> dict:
    from backend.data import load_rows
    from backend.models.catalog import resolve_model
    from backend.workspace import Workspace

    ds = cli(ws, "datasets", "add", str(ROOT / "examples" / "concise"), "--name", "concise")
    held = load_rows(Workspace.resolve(ws), ds["id"], "validation")
    base_dir = resolve_model(MODEL, Workspace.resolve(ws).models_dir, False)
    base, tok = _load(base_dir, None)
    before = sum(mean_logp(base, tok, r["messages"], r["chosen"]) > mean_logp(base, tok, r["messages"], r["rejected"])
                 for r in held) / len(held)  # fmt: skip
    before_replies = greedy(base, tok, held, 96) if answers else []
    before_len = sum(map(len, before_replies)) / len(held) if answers else None
    t0 = time.monotonic()
    run = cli(ws, "train", "--task", "dpo", "--dataset", "concise", "--wait")
    seconds = time.monotonic() - t0
    out = {"mean_answer_chars_before": before_len}
    if answers:
        tuned, _ = _load(base_dir, ws / "runs" / str(run["id"]) / "adapter")
        replies = greedy(tuned, tok, held, 96)
        out |= {"mean_answer_chars_after": round(sum(map(len, replies)) / len(held), 1), "example_answers": replies[:3]}
        out |= {  # the preferred style: about as long as the chosen answer ("Paris.", "东京。"), no preamble
            "direct_answers_before": sum(map(direct, before_replies, held)),
            "direct_answers_after": sum(map(direct, replies, held)),
            "answers": [[r["messages"][-1]["content"], b, a]
                        for r, b, a in zip(held, before_replies, replies, strict=True)],
        }  # fmt: skip
    return out | {
        "task": "dpo",
        "pairs_held_out": len(held),
        "preference_accuracy_before": round(before, 3),
        "preference_accuracy_after": run["metrics"].get("eval_rewards_accuracy"),
        "train_seconds": run["metrics"].get("train_seconds"),
        "peak_memory_mb": run["metrics"].get("peak_memory_mb"),
        "wall_seconds": round(seconds, 1),
    }


def direct(reply: str, row: dict) -> bool:
    """A reply in the preferred style: at most three times as long as the chosen answer, plus 20 characters."""
    return len(reply.strip()) <= 3 * len(row["chosen"]) + 20


def grpo(ws: Path, answers: bool = True) -> dict:
    """The recipe of examples/arithmetic/README.md: a short SFT run on 24 formatted training answers, then GRPO
    from it. Greedy answers to the 24 held-out prompts: base model, after the SFT warm-up, after GRPO."""
    from backend.data import load_rows
    from backend.models.catalog import resolve_model
    from backend.rewards.builtin import answer_of
    from backend.workspace import Workspace

    sys.path.insert(0, str(ROOT / "examples" / "arithmetic"))
    from format_demos import demos

    demo_file = ws.parent / "demos.jsonl"
    demo_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in demos()), encoding="utf-8")
    cli(ws, "datasets", "add", str(demo_file), "--name", "arithmetic-demos")
    ds = cli(ws, "datasets", "add", str(ROOT / "examples" / "arithmetic"), "--name", "arithmetic")
    held = load_rows(Workspace.resolve(ws), ds["id"], "validation")
    base_dir = resolve_model(MODEL, Workspace.resolve(ws).models_dir, False)
    fmt = re.compile(r"^\s*<answer>.+?</answer>\s*$", re.S)

    def score(model_dir: Path, adapter: Path | None) -> tuple[float, float, list[str]]:
        model, tok = _load(model_dir, adapter)
        replies = greedy(model, tok, held, 32)
        ok = sum(bool(fmt.match(a)) for a in replies) / len(held)
        right = sum(answer_of(a) == r["answer"] for a, r in zip(replies, held, strict=True)) / len(held)
        return round(ok, 3), round(right, 3), replies

    before = score(base_dir, None)
    t0 = time.monotonic()
    sft = cli(ws, "train", "--task", "sft", "--dataset", "arithmetic-demos", "--max-steps", str(SFT_STEPS), "--wait")
    t1 = time.monotonic()
    warm = score(base_dir, ws / "runs" / str(sft["id"]) / "adapter")
    t2 = time.monotonic()
    run = cli(ws, "train", "--task", "grpo", "--dataset", "arithmetic", "--from-run", str(sft["id"]), "--reward",
              "format", "--reward", "numeric@2", "--max-steps", str(GRPO_STEPS), "--wait")  # fmt: skip
    t3 = time.monotonic()
    after = score(ws / "runs" / str(sft["id"]) / "merged", ws / "runs" / str(run["id"]) / "adapter")
    return {
        "task": "grpo",
        "prompts_held_out": len(held),
        "format_before": before[0],
        "match_before": before[1],
        "format_after_sft": warm[0],
        "match_after_sft": warm[1],
        "format_after": after[0],
        "match_after": after[1],
        "example_answers": after[2][:4],
        "sft_wall_seconds": round(t1 - t0, 1),
        "grpo_wall_seconds": round(t3 - t2, 1),
        "wall_seconds": round((t1 - t0) + (t3 - t2), 1),  # both train commands, not the measurements
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["dpo", "grpo"])
    p.add_argument("--no-answers", action="store_true", help="dpo: skip generating held-out answers (slow CPUs)")
    args = p.parse_args()
    for name, bench in (("dpo", dpo), ("grpo", grpo)):
        if args.only in (None, name):
            with tempfile.TemporaryDirectory(prefix=f"tb-bench-{name}-") as tmp:
                print(json.dumps(bench(Path(tmp) / "ws", not args.no_answers), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
