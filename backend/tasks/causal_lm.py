"""Instruction / chat SFT for causal LMs: chat template, loss on assistant turns, packing, LoRA or full.

The worker calls `build(cfg, model_dir, rows, precision)` and hands the result to the Trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from backend.config import RunConfig
from backend.tasks.base import Built

log = logging.getLogger(__name__)

IGNORE = -100  # label value the loss skips


def tokenize(
    messages: list[dict[str, str]], tokenizer: Any, cutoff: int, train_on_prompt: bool
) -> dict[str, list[int]]:
    """Token ids and labels for one conversation; labels are IGNORE outside assistant turns.

    Each assistant turn's span is found by rendering the conversation up to the turn (with the
    generation prompt) and up to its end, so any chat template works without knowing its markers.
    """
    ids = _render(tokenizer, messages, add_generation_prompt=False)
    labels = list(ids) if train_on_prompt else [IGNORE] * len(ids)
    if not train_on_prompt:
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            start = len(_render(tokenizer, messages[:i], add_generation_prompt=True))
            end = len(_render(tokenizer, messages[: i + 1], add_generation_prompt=False))
            labels[start:end] = ids[start:end]
    return {"input_ids": ids[:cutoff], "labels": labels[:cutoff]}


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, DataCollatorWithFlattening

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise ValueError(f"model '{cfg.model}' has no chat template; pick an instruct/chat model")

    def encode(rows: list[dict[str, Any]]) -> datasets.Dataset:
        data = datasets.Dataset.from_list(rows)
        data = data.map(
            lambda r: tokenize(r["messages"], tokenizer, cfg.cutoff_len, cfg.train_on_prompt),
            remove_columns=data.column_names,
            desc="tokenizing",
        )
        return data.filter(lambda r: any(x != IGNORE for x in r["labels"]), desc="dropping rows cut before the answer")

    train, evalset = encode(train_rows), encode(eval_rows) if eval_rows else None
    if len(train) == 0:
        raise ValueError(f"every row is longer than cutoff_len={cfg.cutoff_len} before its answer; raise cutoff_len")
    if evalset is None and cfg.val_ratio > 0 and len(train) >= 10:
        split = train.train_test_split(test_size=cfg.val_ratio, seed=cfg.seed)
        train, evalset = split["train"], split["test"]

    # Base weights in the compute dtype: LoRA trains fp32 adapters on top (peft upcasts them), and
    # casting the frozen weights once here beats autocast re-casting them every step.
    load_dtype = dtype if cfg.method == "lora" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=load_dtype, attn_implementation="sdpa")
    model.config.use_cache = False
    if cfg.method == "lora":
        model = _add_lora(model, cfg)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    # Packing: the batch becomes one row with restarting position_ids; transformers turns that into a
    # block-diagonal mask, so no token attends across examples. It pays off with flash attention on
    # GPU; on CPU the one long masked row costs more than length-grouped padded rows (bench/).
    collator = (
        DataCollatorWithFlattening(return_position_ids=True)
        if cfg.packing
        else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE, pad_to_multiple_of=8)
    )
    tokens = sum(len(x) for x in train["input_ids"])
    return Built(model, tokenizer, train, evalset, collator, trainable, total, tokens, sft_trainer())


def sft_trainer() -> type:
    """A Trainer whose loss asks the model for logits only at positions that have a label.

    The LM head (vocabulary x hidden), its float32 copy and log-softmax cost about a quarter of a
    small model's step; on chat data most positions are system or prompt tokens with no label.
    `logits_to_keep` takes the positions (the union over the batch's rows) where some row has a
    label; the loss is the same as the model's own, to float rounding.
    """
    import inspect

    import torch.nn.functional as F
    from transformers import Trainer

    class SFTTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.get("labels")
            if labels is None or return_outputs or not _takes_logits_to_keep(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            targets = labels[:, 1:]  # position i predicts token i + 1
            keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
            rest = {k: v for k, v in inputs.items() if k != "labels"}
            logits = model(**rest, logits_to_keep=keep).logits
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(), targets[:, keep].flatten(), ignore_index=IGNORE, reduction="sum"
            )
            # num_items_in_batch counts labelled tokens over all accumulated micro-batches.
            count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum().clamp(min=1)
            return loss / count

    def _takes_logits_to_keep(model) -> bool:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    return SFTTrainer


def _add_lora(model: Any, cfg: RunConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = cfg.lora_targets
    if targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        unknown = [t for t in targets if t not in names]
        if unknown:
            raise ValueError(f"setting 'lora_targets': the model has no module named {', '.join(unknown)}")
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)
