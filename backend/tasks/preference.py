"""Preference tuning with TRL's trainers: dpo, orpo (chosen/rejected pairs), kto (good/bad answers) and
reward (a sequence classifier scoring chosen above rejected).

The worker calls `build(...)` like any task's. The policy is the run's `model` (a completed SFT run's
model when `from_run` is set: backend/runs/start.py put its folder in `model` when the run was
queued). With LoRA the reference is the same model with the adapter switched off (TRL does this
for a PeftModel): no second copy in memory. Full and freeze keep a frozen copy as the reference.
TRL logs rewards/chosen, rewards/rejected, rewards/margins and rewards/accuracies (eval_ too),
which the worker's callback records as curves like any other metric.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any

import torch

from backend.config import ADAPTERS, RunConfig
from backend.tasks.base import Built
from backend.tasks.causal_lm import layer_groups, load_model, load_tokenizer
from backend.tasks.causal_lm import skeleton as skeleton  # the fit estimate counts the policy (backend/models/fit.py)

ACCURACY = "eval_rewards/accuracies"  # TRL's name for the held-out preference accuracy


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    import datasets

    tokenizer = load_tokenizer(cfg, model_dir, chat=True)
    train_rows, eval_rows = hold_out(cfg, train_rows, eval_rows)
    train = datasets.Dataset.from_list([trl_row(r) for r in train_rows])
    evalset = datasets.Dataset.from_list([trl_row(r) for r in eval_rows]) if eval_rows else None
    if cfg.task == "reward":
        model = _load_scorer(cfg, model_dir, dtype, tokenizer)
    else:
        model = load_model(cfg, model_dir, dtype)
    groups = layer_groups(model)
    reference = None
    if cfg.method in ADAPTERS:
        from backend.training.methods import add_lora

        model = add_lora(model, cfg, task_type="SEQ_CLS" if cfg.task == "reward" else "CAUSAL_LM")
    elif cfg.task in ("dpo", "kto"):  # full / freeze: the model as it starts, frozen
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    tokens = sum(_chars(r) for r in train_rows) // 4  # an estimate: TRL tokenizes inside its trainer
    built = Built(model, tokenizer, train, evalset, None, tokens, trainer_factory(cfg, tokenizer, reference))
    built.layer_groups = groups
    built.final_metrics = lambda trainer: summary_metrics(trainer)
    return built


def hold_out(
    cfg: RunConfig, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The dataset's validation split, else `val_ratio` of the training rows (at least one)."""
    if eval_rows or not cfg.val_ratio or len(train_rows) < 4:
        return train_rows, eval_rows
    order = random.Random(cfg.seed).sample(range(len(train_rows)), len(train_rows))
    cut = max(1, round(len(train_rows) * cfg.val_ratio))
    return [train_rows[i] for i in order[cut:]], [train_rows[i] for i in order[:cut]]


def trl_row(row: dict[str, Any]) -> dict[str, Any]:
    """A canonical row in TRL's conversational layout (its trainers apply the chat template)."""
    prompt = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if "chosen" in row:
        return {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}],
        }
    return {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": row["completion"]}],
        "label": bool(row["desirable"]),
    }


def _chars(row: dict[str, Any]) -> int:
    answers = sum(len(row.get(k) or "") for k in ("chosen", "rejected", "completion"))
    return sum(len(m["content"]) for m in row["messages"]) + answers


def _load_scorer(cfg: RunConfig, model_dir: Path, dtype: torch.dtype, tokenizer: Any) -> Any:
    """A one-score sequence classifier on the language model's body (its head starts fresh)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        num_labels=1,
        dtype=dtype if cfg.method in ADAPTERS else torch.float32,
        trust_remote_code=cfg.trust_remote_code,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def trl_arguments(config_cls: type, args: Any, **extra: Any) -> Any:
    """The worker's TrainingArguments as a TRL config (DPOConfig, KTOConfig ...) plus the task's settings."""
    from transformers import TrainingArguments

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    given = {k: v for k, v in given.items() if not k.startswith("_") and k not in ("logging_dir",)}
    given["train_sampling_strategy"] = "random"  # TRL's tokenized rows have no input_ids to group by length
    return config_cls(**(given | extra))


def trainer_factory(cfg: RunConfig, tokenizer: Any, reference: Any | None) -> Any:
    """A callable the worker calls like a Trainer class; it builds the TRL trainer for `cfg.task`."""

    def make(*, model, args, train_dataset, eval_dataset, data_collator, compute_metrics, callbacks, **rest):
        trainer_cls, config_cls, extra, with_reference = _trl_classes(cfg)
        kwargs: dict[str, Any] = {
            "model": model,
            "args": trl_arguments(config_cls, args, **extra),
            "train_dataset": train_dataset,
            "eval_dataset": eval_dataset,
            "processing_class": tokenizer,
            "callbacks": callbacks,
        }
        if with_reference:
            kwargs["ref_model"] = reference
        trainer = trainer_cls(**kwargs)
        if rest.get("optimizer_cls_and_kwargs") is not None:  # the run's optimizer choice, as for SFT
            trainer.optimizer_cls_and_kwargs = rest["optimizer_cls_and_kwargs"]
        return trainer

    return make


def _trl_classes(cfg: RunConfig) -> tuple[type, type, dict[str, Any], bool]:
    """(trainer, config class, task settings, whether it takes a reference model) for the run's task."""
    common = {"max_length": cfg.cutoff_len, "disable_dropout": True}
    if cfg.task == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer, DPOConfig, {**common, "beta": cfg.beta, "loss_type": [cfg.loss_type]}, True
    if cfg.task == "kto":
        from trl import KTOConfig, KTOTrainer

        # KTO's KL term pairs each answer with its batch neighbour's, so batches keep a fixed order.
        extra = {**common, "beta": cfg.beta, "train_sampling_strategy": "sequential"}
        return KTOTrainer, KTOConfig, extra, True
    if cfg.task == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer, ORPOConfig, {**common, "beta": cfg.beta}, False
    if cfg.task == "reward":
        from trl import RewardConfig, RewardTrainer

        return RewardTrainer, RewardConfig, {"max_length": cfg.cutoff_len, "disable_dropout": True}, False
    raise ValueError(f"task '{cfg.task}' is not a preference task")


def summary_metrics(trainer: Any) -> dict[str, Any]:
    """The held-out preference accuracy under a plain name (`eval_rewards_accuracy`) for runs show/compare."""
    evals = [h for h in trainer.state.log_history if ACCURACY in h or "eval_accuracy" in h]
    if not evals:
        return {}
    last = evals[-1]
    value = last.get(ACCURACY, last.get("eval_accuracy"))
    return {"eval_rewards_accuracy": round(float(value), 4)}
