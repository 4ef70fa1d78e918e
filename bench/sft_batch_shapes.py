"""Where an SFT LoRA step's time goes on this CPU: batch shapes, packing and autocast, one process.

    .venv/bin/python bench/sft_batch_shapes.py                 # every variant, ~6 minutes
    .venv/bin/python bench/sft_batch_shapes.py grouped packed  # some of them

The job of bench/sft_speed.py (examples/instructions.json, SmolLM2-135M-Instruct, LoRA r8 on all
linear layers, batch 4, cutoff 256, bf16 base weights) through Tuneboard's own task code
(backend.tasks.causal_lm.build: tokenization, LoRA, the labelled-positions loss), timed step by
step without the Trainer around it, so only the batch's shape and the precision differ. Tokens/s
counts non-padding tokens over the steps after the first (warm-up).

Variants:
  fixed        4 x 256 random tokens (the ANCHORS.md micro-benchmark's shape)
  grouped      length-grouped padded batches of 4, padded to a multiple of 8 (Tuneboard's default)
  grouped64    the same padded to a multiple of 64 (fewer distinct shapes)
  packed       examples packed into rows of 256 (first-fit), 4 rows a step, attention kept inside each
               example (position_ids restart; transformers builds the block-diagonal mask)
  packed-open  the same rows with plain causal attention across examples (LLaMA-Factory's packing)
  with-casts   grouped under autocast, but with peft's cast of each adapter input up to fp32 kept
               (Tuneboard skips it; this variant measures what that saves)
  no-autocast  grouped, with the fp32 adapters fed by peft's casts instead of bf16 autocast
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from peft.helpers import disable_input_dtype_casting

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.config import RunConfig  # noqa: E402
from backend.models.catalog import resolve_model  # noqa: E402
from backend.tasks.causal_lm import IGNORE, build  # noqa: E402

BATCH, WIDTH = 4, 256
VARIANTS = ("fixed", "grouped", "grouped64", "packed", "packed-open", "with-casts", "no-autocast")


def rows_from(path: Path) -> list[dict]:
    out = []
    for r in json.loads(path.read_text(encoding="utf-8")):
        prompt = r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")
        out.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"]}]})
    return out


def grouped(examples: list[dict], collator) -> list[dict]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    chunks = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    random.Random(0).shuffle(chunks)
    return [collator([examples[i] for i in chunk]) for chunk in chunks]


def packed(examples: list[dict], isolate: bool) -> list[dict]:
    rows: list[list] = []  # [length, members], first-fit decreasing
    for i in sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"])):
        n = len(examples[i]["input_ids"])
        slot = next((r for r in rows if r[0] + n <= WIDTH), None)
        if slot is None:
            rows.append([n, [i]])
        else:
            slot[0] += n
            slot[1].append(i)
    random.Random(0).shuffle(rows)
    batches = []
    for k in range(0, len(rows), BATCH):
        ids, labels, positions, real = [], [], [], []
        for _, members in rows[k : k + BATCH]:
            a, lab, pos = [], [], []
            for i in members:
                a += examples[i]["input_ids"]
                lab += examples[i]["labels"]
                pos += range(len(examples[i]["input_ids"]))
            pad = WIDTH - len(a)
            real.append(len(a))
            ids.append(a + [0] * pad)
            labels.append(lab + [IGNORE] * pad)
            positions.append(pos + list(range(pad)))
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "tokens": sum(real)}
        if isolate:
            batch["position_ids"] = torch.tensor(positions)
        batches.append(batch)
    return batches


def main() -> None:
    chosen = sys.argv[1:] or list(VARIANTS)
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as models:
        model_dir = resolve_model("SmolLM2-135M-Instruct", Path(models))
        cfg = RunConfig(task="sft", method="lora", lora_rank=8, lora_alpha=16, batch_size=BATCH, cutoff_len=WIDTH)
        built = build(cfg, model_dir, rows_from(ROOT / "examples" / "instructions.json"), [], torch.bfloat16)
    model = built.model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    examples = [
        {"input_ids": a, "labels": b} for a, b in zip(built.train["input_ids"], built.train["labels"], strict=True)
    ]
    examples = [{**e, "attention_mask": [1] * len(e["input_ids"])} for e in examples]

    def step(batch: dict, autocast: bool, skip_casts: bool = True) -> None:
        targets = batch["labels"][:, 1:]
        keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "tokens")}
        # As Tuneboard's SFT trainer: under autocast, no cast of the adapters' inputs up to fp32.
        mixed = (torch.autocast("cpu", dtype=torch.bfloat16), disable_input_dtype_casting(model))
        with mixed[0] if autocast else nullcontext(), mixed[1] if autocast and skip_casts else nullcontext():
            logits = model(**inputs, logits_to_keep=keep).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets[:, keep].flatten(), ignore_index=IGNORE)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    print("| variant | steps | tokens/s |\n|---|---|---|")
    for name in chosen:
        collator = built.collator
        if name == "fixed":
            batches = [
                {
                    "input_ids": torch.randint(0, 49_000, (BATCH, WIDTH)),
                    "labels": torch.randint(0, 49_000, (BATCH, WIDTH)),
                }
                for _ in range(8)
            ]
        elif name == "grouped64":
            collator.pad_to_multiple_of = 64
            batches = grouped(examples, collator)
            collator.pad_to_multiple_of = 8
        elif name in ("grouped", "with-casts", "no-autocast"):
            batches = grouped(examples, collator)
        else:
            batches = packed(examples, isolate=name == "packed")
        for b in batches:
            b.setdefault("tokens", int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel())
        autocast, skip_casts = name != "no-autocast", name != "with-casts"
        step(batches[0], autocast, skip_casts)  # warm-up
        t0 = time.perf_counter()
        for b in batches[1:]:
            step(b, autocast, skip_casts)
        seconds = time.perf_counter() - t0
        print(f"| {name} | {len(batches) - 1} | {sum(b['tokens'] for b in batches[1:]) / seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
