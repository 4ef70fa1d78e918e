"""The baseline a user writes by hand: transformers Trainer + peft LoRA (or full), dynamic padding.

    python bench/plain_trainer.py MODEL_DIR DATA.json [--rank 8] [--batch-size 4] [--cutoff 256] [--full] [--bf16]

fp32 by default; `--bf16` is what a user would add: `TrainingArguments(bf16=True)` (autocast over
fp32 weights). `--full` trains every weight instead of a LoRA adapter.

Loss on the whole chat-formatted example (the common hand-written recipe), one epoch. Prints one
JSON line with the wall time of the training call and the non-padding tokens it saw.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("data")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--cutoff", type=int, default=256)
    p.add_argument("--out", default="/tmp/plain-trainer-out")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--bf16", action="store_true", help="TrainingArguments(bf16=True)")
    args = p.parse_args()

    import datasets
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    rows = json.loads(Path(args.data).read_text(encoding="utf-8"))

    def encode(r):
        prompt = r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"]}]
        ids = tok.apply_chat_template(msgs, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)[: args.cutoff]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)}

    data = datasets.Dataset.from_list(rows).map(encode, remove_columns=["instruction", "input", "output"])
    model = AutoModelForCausalLM.from_pretrained(args.model_dir)
    if not args.full:
        model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules="all-linear"))
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=args.out,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=1,
            learning_rate=5e-5 if args.full else 2e-4,
            bf16=args.bf16,
            logging_steps=5,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tok, padding=True),
    )
    t0 = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - t0
    tokens = sum(len(x) for x in data["input_ids"])
    import resource

    result = {
        "train_seconds": round(seconds, 1),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
