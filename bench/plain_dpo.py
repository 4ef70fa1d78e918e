"""The baseline a user writes by hand: TRL's DPOTrainer + a peft LoRA config (or full fine-tuning).

    python bench/plain_dpo.py MODEL_DIR TRAIN.jsonl [--rank 16] [--batch-size 8] [--steps 6] [--full] [--bf16]

The recipe of TRL's DPO documentation: load the model and tokenizer, a dataset of prompt/chosen/rejected
as chat messages, `DPOConfig(...)`, `DPOTrainer(model, args, train_dataset, processing_class,
peft_config)`; with LoRA TRL uses the adapter-disabled model as the reference, in full it loads a copy.
Prints one JSON line: the training call's seconds and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("data", help="jsonl rows with prompt, chosen, rejected (strings)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--out", default="/tmp/plain-dpo-out")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of a LoRA adapter")
    p.add_argument("--bf16", action="store_true", help="DPOConfig(bf16=True)")
    args = p.parse_args()

    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    train = datasets.Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in rows
        ]
    )
    model = AutoModelForCausalLM.from_pretrained(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    config = DPOConfig(
        output_dir=args.out,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=args.lr,
        beta=args.beta,
        bf16=args.bf16,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
    )
    peft = None if args.full else LoraConfig(r=args.rank, lora_alpha=args.alpha, target_modules="all-linear")
    trainer = DPOTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer, peft_config=peft)
    t0 = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"train_seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
