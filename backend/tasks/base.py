"""What every task module hands the worker: the `Built` bundle.

A task module (backend/tasks/*.py) exposes

    build(cfg: RunConfig, model_dir: Path, train_rows: list[dict], eval_rows: list[dict], dtype) -> Built

`train_rows`/`eval_rows` are canonical rows of the dataset's train and validation splits
(`eval_rows` may be empty: the task then holds out `cfg.val_ratio` of the training rows itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Built:
    model: Any
    tokenizer: Any  # tokenizer or image processor; saved beside the model when it has save_pretrained
    train: Any  # a datasets.Dataset (or torch Dataset) the collator turns into model inputs
    eval: Any | None
    collator: Any
    train_tokens: int  # tokens (or examples, for images) that take part in training, per epoch
    trainer_cls: type
    compute_metrics: Callable[[Any], dict[str, float]] | None = None  # Trainer's compute_metrics
    # Bottom-to-top blocks (embeddings first, then one group per layer) for the freeze and gradual
    # methods; the head is always trained and not listed here.
    layer_groups: list[Any] = field(default_factory=list)
    save: Callable[[Any, Path], None] | None = None  # (trainer, out_dir); None: model.save_pretrained
    # (trainer) -> extra metrics after training, e.g. generated answers scored with BLEU/ROUGE.
    final_metrics: Callable[[Any], dict[str, Any]] | None = None

    @property
    def trainable_params(self) -> int:
        """Parameters that train now (freeze and gradual change this after build)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @property
    def total_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
