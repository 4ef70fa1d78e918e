"""How a RunConfig becomes the Trainer's settings: optimizer, schedule, precision, devices, early stopping.

    args = training_arguments(cfg, out_dir, has_eval=True, device="cpu", precision="bf16")
    trainer = Trainer(..., args=args, optimizer_cls_and_kwargs=optimizer(cfg, "cpu"),
                      callbacks=[*stopping_callbacks(cfg), ...])

Under torchrun (several processes) the Trainer wraps the model in DistributedDataParallel by
itself; the backend is gloo on CPU and nccl on CUDA. `StopTogether` keeps every rank stopping at
the same step when only rank 0 saw a cancel request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from backend.config import NEEDS_VALIDATION, RunConfig


def optimizer(cfg: RunConfig, device: str) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The optimizer class and its arguments; the Trainer adds the parameter groups (no decay on
    biases and norms). AdamW/Adam use the fused kernel on CPU and CUDA: one pass over all tensors."""
    fused = {"fused": True} if device in ("cpu", "cuda") else {}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW, {"lr": cfg.lr, **fused}
    if cfg.optimizer == "adam":  # weight decay as L2 in the gradient (the original Adam)
        return torch.optim.Adam, {"lr": cfg.lr, **fused}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD, {"lr": cfg.lr, "momentum": cfg.momentum}
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop, {"lr": cfg.lr, "momentum": cfg.momentum}
    raise ValueError(f"setting 'optimizer': {cfg.optimizer!r} is not one of adamw, adam, sgd, rmsprop")


def training_arguments(
    cfg: RunConfig, output_dir: Path, *, has_eval: bool, device: str, precision: str, group_by_length: bool = True
) -> TrainingArguments:
    """TrainingArguments for `cfg`. Early stopping evaluates (and saves) on the same schedule, as
    `load_best_model_at_end` requires, and keeps the best checkpoint."""
    if cfg.early_stopping_patience and not has_eval:
        raise ValueError(NEEDS_VALIDATION)
    save = "steps" if cfg.save_steps else "epoch"
    stopping = bool(cfg.early_stopping_patience)
    metric = cfg.early_stopping_metric.removeprefix("eval_")
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # below 1: a share of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_checkpointing=cfg.grad_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.grad_checkpointing else None,
        logging_steps=cfg.logging_steps,
        save_strategy=save,
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        eval_strategy=_eval_strategy(cfg, save) if has_eval else "no",
        eval_steps=(cfg.save_steps if stopping else cfg.eval_steps) or None,
        load_best_model_at_end=stopping,
        metric_for_best_model=metric if stopping else None,
        greater_is_better=not metric.endswith("loss") if stopping else None,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        ddp_backend=("nccl" if device == "cuda" else "gloo") if distributed else None,
        # Gradual unfreezing freezes parameters after DDP has registered them.
        ddp_find_unused_parameters=cfg.method == "gradual" if distributed else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        train_sampling_strategy="group_by_length" if group_by_length else "random",  # little padding per batch
        dataloader_num_workers=0,
    )


def _eval_strategy(cfg: RunConfig, save: str) -> str:
    """Early stopping evaluates with each checkpoint (it keeps the best one); else every `eval_steps`
    (a search prunes trials on these points) or once per epoch."""
    if cfg.early_stopping_patience:
        return save
    return "steps" if cfg.eval_steps else "epoch"


def stopping_callbacks(cfg: RunConfig) -> list[TrainerCallback]:
    """Early stopping (when asked) or no checkpoint at the last step, and under torchrun one stop
    decision for all ranks."""
    callbacks: list[TrainerCallback] = []
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    else:  # early stopping reloads its best checkpoint, which may be the last one
        callbacks.append(NoFinalCheckpoint())
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        callbacks.append(StopTogether())
    return callbacks


class NoFinalCheckpoint(TrainerCallback):
    """Skip the checkpoint at the last step: the worker saves the finished model right after, and a
    completed run is never resumed. For full fine-tuning that checkpoint is the weights plus twice
    their size in optimizer state (1.6 GB for a 135M model), written inside the timed training loop.
    A cancelled run stops before the last step and still saves."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = False
        return control

    on_epoch_end = on_step_end


class StopTogether(TrainerCallback):
    """If any rank wants to stop (rank 0 saw a cancel), every rank stops and saves at this step.

    A rank that trains on alone would wait forever in the next gradient all-reduce. Must come
    after the callbacks that set `should_training_stop`.
    """

    def on_step_end(self, args, state, control, **kwargs):
        import torch.distributed as dist

        if not dist.is_initialized():
            return control
        flags = torch.tensor([float(control.should_training_stop), float(control.should_save)], device=args.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        control.should_training_stop, control.should_save = bool(flags[0]), bool(flags[1])
        return control
