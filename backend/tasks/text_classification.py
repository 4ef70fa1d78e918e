"""Text classification: a sequence-classification head on an encoder (default: the bundled MiniLM).

Rows are {"text", "label", optional "text_pair"}; class ids follow the sorted label list and are
saved as the model's id2label/label2id, so the saved folder loads with a plain
`AutoModelForSequenceClassification.from_pretrained`. Batches are padded to their longest row.

    python -m backend.cli train --task text-classification --dataset reviews --wait --json
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from backend.config import ADAPTERS, RunConfig
from backend.shrink import from_pretrained
from backend.tasks.base import Built
from backend.tasks.classification import class_list, hold_out, trainer_metrics

log = logging.getLogger(__name__)

TASK = "text-classification"


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    import datasets
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer

    _check_rows(train_rows, "train")
    _check_rows(eval_rows, "validation")
    labels = class_list(train_rows, eval_rows, TASK)
    train_rows, eval_rows = hold_out(train_rows, eval_rows, cfg.val_ratio, cfg.seed)
    config = _text_config(cfg, model_dir)
    tokenizer = load_tokenizer(model_dir, cfg.trust_remote_code)
    # Positions past the model's table would crash the embedding lookup; cut there at the latest.
    max_len = min(cfg.cutoff_len, getattr(config, "max_position_embeddings", None) or cfg.cutoff_len)
    label2id = {name: i for i, name in enumerate(labels)}

    def encode(rows: list[dict[str, Any]]) -> datasets.Dataset:
        data = datasets.Dataset.from_list(
            [
                {"text": r["text"], "text_pair": r.get("text_pair") or None, "label": label2id[str(r["label"])]}
                for r in rows
            ]
        )
        return data.map(
            lambda r: tokenizer(r["text"], r["text_pair"], truncation=True, max_length=max_len),
            remove_columns=["text", "text_pair"],
            desc="tokenizing",
        ).rename_column("label", "labels")

    train, evalset = encode(train_rows), encode(eval_rows) if eval_rows else None
    extra: dict[str, Any] = {}
    if cfg.method == "qlora":
        from backend.training.methods import quantization_config

        extra = {"quantization_config": quantization_config(cfg, dtype), "dtype": dtype}
    model = from_pretrained(  # a folder whose heads were pruned (compress) loads in its shape
        AutoModelForSequenceClassification,
        model_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        ignore_mismatched_sizes=True,  # a classifier with other classes gets a new head
        trust_remote_code=cfg.trust_remote_code,
        **extra,
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    groups = layer_groups(model)
    if cfg.method in ADAPTERS:
        from backend.training.methods import add_lora

        model = add_lora(model, cfg, task_type="SEQ_CLS")  # peft keeps the new head trainable
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8)
    tokens = sum(len(x) for x in train["input_ids"])
    log.info("%d classes: %s", len(labels), ", ".join(labels[:20]) + (" ..." if len(labels) > 20 else ""))
    return Built(
        model,
        tokenizer,
        train,
        evalset,
        collator,
        tokens,
        Trainer,
        compute_metrics=trainer_metrics(labels),
        layer_groups=groups,
        save=lambda trainer, out: save_model(trainer.model, labels, out),
    )


def save_model(model: Any, labels: list[str], out: Path) -> None:
    """The model (or its adapter, head included) plus classes.json: an adapter alone does not say which
    classes its head has, and export rebuilds the base with them."""
    import json

    model.save_pretrained(out)
    (out / "classes.json").write_text(json.dumps(labels, ensure_ascii=False))


def load_tokenizer(model_dir: Path, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, with a pad token (decoder-style models often lack one)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def layer_groups(model: Any) -> list[Any]:
    """Bottom-to-top groups: the embeddings, then each encoder layer (the longest ModuleList).

    The pooler and the classifier sit above them and count as the head.
    """
    base = model.base_model
    embeddings = getattr(base, "embeddings", None) or model.get_input_embeddings()
    lists = [m for m in base.modules() if isinstance(m, torch.nn.ModuleList)]
    layers = max(lists, key=len) if lists else []
    return [embeddings, *layers]


def skeleton(cfg: RunConfig, model_dir: Path) -> tuple[Any, list[Any]]:
    """The model without weights (meta device), for checks before a run is queued."""
    from transformers import AutoModelForSequenceClassification

    config = _text_config(cfg, model_dir)
    config.num_labels = 2
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=cfg.trust_remote_code)
    return model, layer_groups(model)


def _text_config(cfg: RunConfig, model_dir: Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_dir, trust_remote_code=cfg.trust_remote_code)
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(
            f"model '{cfg.model}' is not a transformers text model ({e}); "
            "use all-MiniLM-L6-v2 or a folder with an encoder checkpoint for text-classification"
        ) from None


def _check_rows(rows: list[dict[str, Any]], split: str) -> None:
    for i, row in enumerate(rows, start=1):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise ValueError(
                f"{split} row {i} has no 'text'; a {TASK} dataset has text and label columns "
                "(was it imported for another task?)"
            )
