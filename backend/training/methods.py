"""Fine-tuning methods, the same for every task: full, LoRA (+DoRA, rsLoRA), QLoRA, freeze, gradual.

A task builds its model and lists its `layer_groups` (bottom to top: embeddings, then one group per
layer; see backend/tasks/base.py). The head is every trainable parameter outside those groups, plus
the output embeddings: with tied embeddings (SmolLM2 ties lm_head to embed_tokens) the one shared
matrix counts as the head, so it trains from the first step in freeze and gradual; otherwise
"head only" would leave a causal LM with nothing but its final norm to learn.

    add_lora(model, cfg, task_type="CAUSAL_LM")      # lora / qlora
    freeze(model, groups, top=cfg.freeze_layers)     # freeze: top N groups + head train
    GradualUnfreezing(model, groups, every=2, unit="epochs")  # a TrainerCallback

backend/runs/preflight.py uses the checks here to refuse a run before it is queued.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from backend.config import RunConfig

log = logging.getLogger(__name__)


# -- LoRA / QLoRA ------------------------------------------------------------------------------


def lora_targets(model: Any, cfg: RunConfig) -> str | list[str]:
    """`cfg.lora_targets` as peft wants it, after checking every named module exists in `model`."""
    if cfg.lora_targets.strip() == "all-linear":
        return "all-linear"
    targets = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    unknown = [t for t in targets if t not in names]
    if unknown:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ValueError(
            f"setting 'lora_targets': the model has no module named {', '.join(unknown)}; "
            f"its linear modules are {', '.join(linear[:12]) or 'none'} (or use all-linear)"
        )
    return targets


def add_lora(model: Any, cfg: RunConfig, task_type: str, modules_to_save: list[str] | None = None) -> Any:
    """Wrap `model` with a LoRA adapter (DoRA / rsLoRA when asked); for QLoRA, prepare the k-bit base first."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.grad_checkpointing)
    config = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_targets(model, cfg),
        use_dora=cfg.lora_dora,
        use_rslora=cfg.lora_rslora,
        task_type=task_type,
        modules_to_save=modules_to_save,
    )
    return get_peft_model(model, config)


def quantization_config(cfg: RunConfig, compute_dtype: Any) -> Any:
    """The bitsandbytes config a QLoRA base is loaded with (NF4 + double quantization, or int8)."""
    check_qlora(cfg)
    from transformers import BitsAndBytesConfig

    if cfg.qlora_bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def check_qlora(cfg: RunConfig) -> None:
    """QLoRA needs a CUDA GPU and the bitsandbytes package; say which is missing."""
    import torch

    if not torch.cuda.is_available() or cfg.devices in ("cpu", "mps"):
        raise ValueError(
            "setting 'method': qlora needs a CUDA GPU (bitsandbytes quantizes on the GPU); "
            "this run has none, so use lora (same adapter, unquantized base)"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError(
            "setting 'method': qlora needs the bitsandbytes package; `pip install bitsandbytes` or use lora"
        )


# -- freeze / gradual unfreezing ---------------------------------------------------------------


def _head_ids(model: Any) -> set[int]:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if get else None
    return {id(p) for p in head.parameters()} if head is not None else set()


def _set_trainable(model: Any, groups: Sequence[Any], trainable_top: int) -> None:
    """Groups below the top `trainable_top` are frozen; the top ones and the head train."""
    head = _head_ids(model)
    cut = len(groups) - min(trainable_top, len(groups))
    for i, group in enumerate(groups):
        for p in group.parameters():
            if id(p) not in head:
                p.requires_grad_(i >= cut)


def check_layers(cfg: RunConfig, groups: Sequence[Any]) -> None:
    if cfg.method in ("freeze", "gradual") and not groups:
        raise ValueError(f"setting 'method': {cfg.method} needs the model's layers, and this model lists none")
    if cfg.method == "freeze" and cfg.freeze_layers > len(groups):
        raise ValueError(
            f"setting 'freeze_layers': {cfg.freeze_layers} is more than the model's {len(groups)} layer groups "
            f"(embeddings + {len(groups) - 1} layers); use {len(groups)} or fewer"
        )


def freeze(model: Any, groups: Sequence[Any], top: int) -> None:
    """Train only the top `top` layer groups plus the head (0: the head alone, a linear probe)."""
    for p in model.parameters():
        p.requires_grad_(True)
    _set_trainable(model, groups, top)


class GradualUnfreezing(TrainerCallback):
    """Start with the head; unfreeze one more layer group, top-down, every `every` steps or epochs.

    The optimizer is built by the Trainer before training starts, and it only takes parameters
    that require grad then; so every parameter stays trainable until `on_train_begin`, which
    freezes all groups. Frozen parameters get no gradient, so the optimizer skips them (and their
    weight decay) until they thaw. On resume the schedule continues from the checkpoint's step.
    """

    def __init__(self, model: Any, groups: Sequence[Any], every: int, unit: str):
        self.model, self.groups, self.every, self.unit = model, list(groups), every, unit
        self.open = -1  # groups currently trainable

    def due(self, step: int, epoch: float) -> int:
        """Groups that should be trainable after `step` optimizer steps / `epoch` epochs."""
        done = step if self.unit == "steps" else int(epoch + 1e-6)
        return min(done // self.every, len(self.groups))

    def _update(self, state) -> None:
        due = self.due(state.global_step, float(state.epoch or 0.0))
        if due != self.open:
            _set_trainable(self.model, self.groups, due)
            if self.open >= 0:
                log.info("gradual unfreezing: %d of %d layer groups now train", due, len(self.groups))
            self.open = due

    def trainable_at_start(self) -> int:
        """Parameters that train before the first group thaws (the head and what no group holds),
        for the run's report; every parameter stays trainable until the Trainer has built its optimizer."""
        head = _head_ids(self.model)
        grouped = {id(p): p for g in self.groups for p in g.parameters() if id(p) not in head}
        return sum(p.numel() for p in self.model.parameters()) - sum(p.numel() for p in grouped.values())

    def on_train_begin(self, args, state, control, **kwargs):
        self._update(state)

    def on_step_end(self, args, state, control, **kwargs):
        if self.unit == "steps":
            self._update(state)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.unit == "epochs":
            self._update(state)


def prepare(model: Any, cfg: RunConfig, groups: Sequence[Any]) -> list[TrainerCallback]:
    """Apply freeze/gradual to a built model; returns the callbacks the Trainer needs (LoRA is applied at build)."""
    check_layers(cfg, groups)
    if cfg.method == "freeze":
        freeze(model, groups, cfg.freeze_layers)
    elif cfg.method == "gradual":
        for p in model.parameters():  # all in the optimizer; the callback freezes them as training starts
            p.requires_grad_(True)
        return [GradualUnfreezing(model, groups, cfg.unfreeze_every, cfg.unfreeze_unit)]
    return []
