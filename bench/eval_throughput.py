"""Evaluation throughput on the bundled SmolLM2-135M-Instruct: Tuneboard's engine vs a plain transformers loop.

    .venv/bin/python bench/eval_throughput.py                 # models from ./workspace/models ($TUNEBOARD_MODELS_DIR)
    .venv/bin/python bench/eval_throughput.py --repeat 4       # the multiple-choice suite 4 times over (more samples)
    .venv/bin/python bench/eval_throughput.py --gen-limit 8 --new-tokens 32   # a shorter generation half

Two suites, each scored both ways on the same loaded model, and the answers compared:
- multiple choice (the shipped mc-en + mc-zh, 24 questions, x --repeat, 0-shot): backend/evaluate/engine.py
  (lm-evaluation-harness, batched log-likelihoods) vs a loop as a user would write it: one forward pass
  per question and choice letter, the letter's log-probability after the prompt.
- generation (the shipped arithmetic suite, 20 prompts, greedy): the engine's left-padded batches of 8 vs
  `model.generate` one prompt at a time.
Prints a JSON line after each half: samples per second for each way, and on how many answers the two agree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def plain_choice(model, tokenizer, rows) -> list[str]:
    """The loop a user writes: per question, per letter, log p(letter | prompt) from one forward pass."""
    import torch

    answers = []
    for r in rows:
        prompt = f"{r['question'].strip()}\nA. {r['A']}\nB. {r['B']}\nC. {r['C']}\nD. {r['D']}\nAnswer:"
        context = tokenizer(prompt)["input_ids"]
        best, best_letter = None, "A"
        for letter in "ABCD":
            ids = tokenizer(prompt + " " + letter)["input_ids"]
            target = ids[len(context) :]
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            logp = torch.log_softmax(logits.float(), -1)
            score = sum(logp[len(context) - 1 + i, t].item() for i, t in enumerate(target))
            if best is None or score > best:
                best, best_letter = score, letter
        answers.append(best_letter)
    return answers


def plain_generation(model, tokenizer, rows, max_new_tokens: int) -> list[str]:
    """The loop a user writes: the chat template, then `generate` on one prompt at a time, greedy."""
    import torch

    answers = []
    for r in rows:
        chat = [{"role": "user", "content": r["prompt"]}]
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = ids["input_ids"]
        with torch.no_grad():
            out = model.generate(
                ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return answers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=1, help="the multiple-choice questions this many times over")
    p.add_argument("--gen-limit", type=int, default=20, help="generation prompts scored (the suite has 20)")
    p.add_argument("--new-tokens", type=int, default=128, help="generation: at most this many new tokens")
    args = p.parse_args()
    os.environ.setdefault("TUNEBOARD_MODELS_DIR", str(ROOT / "workspace" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from backend.evaluate import engine
    from backend.evaluate.suites import load_suite
    from backend.playground.chat import load
    from backend.workspace import Workspace

    ws = Workspace.resolve(None)
    model, tokenizer = load(None, ws, "SmolLM2-135M-Instruct")
    choice = load_suite("mc-en")
    choice.rows = (choice.rows + load_suite("mc-zh").rows) * args.repeat
    generation = load_suite("arithmetic")
    generation.rows = generation.rows[: args.gen_limit]
    engine.MAX_NEW_TOKENS = args.new_tokens
    out = {"model": "SmolLM2-135M-Instruct", "threads": torch.get_num_threads(), "mc_samples": len(choice.rows)}

    t0 = time.perf_counter()
    ours = [s["answer"] for s in engine.choice_samples(model, tokenizer, choice, fewshot=0)]
    t1 = time.perf_counter()
    plain = plain_choice(model, tokenizer, choice.rows)
    t2 = time.perf_counter()
    out |= {
        "mc_engine_samples_per_s": round(len(ours) / (t1 - t0), 2),
        "mc_plain_samples_per_s": round(len(plain) / (t2 - t1), 2),
        "mc_same_answers": sum(a == b for a, b in zip(ours, plain, strict=True)),
    }
    print(json.dumps(out), flush=True)  # the multiple-choice half, before the (slower) generation half

    t0 = time.perf_counter()
    ours = [s["answer"] for s in engine.generation_samples(model, tokenizer, generation)]
    t1 = time.perf_counter()
    plain = plain_generation(model, tokenizer, generation.rows, args.new_tokens)
    t2 = time.perf_counter()
    out |= {
        "gen_samples": len(ours),
        "gen_engine_samples_per_s": round(len(ours) / (t1 - t0), 2),
        "gen_plain_samples_per_s": round(len(plain) / (t2 - t1), 2),
        "gen_same_answers": sum(a == b for a, b in zip(ours, plain, strict=True)),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
