"""GRPO with TRL's GRPOTrainer: the model samples `num_generations` answers per prompt and learns from
the built-in rewards the run names (`reward`: NAME[:ARGUMENT][@WEIGHT] lines, backend/rewards).

TRL logs reward (the weighted sum), reward_std, rewards/NAME/mean per function, completions/mean_length
and kl; the worker's callback records them as curves. Every `SAMPLE_EVERY` steps the sampled completions
with their rewards are appended to the run folder's samples.jsonl (the Runs tab's table), and the last
table goes into the run's metrics as `samples`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from backend.config import ADAPTERS, RunConfig
from backend.rewards import parse_specs, reward_functions
from backend.tasks.base import Built
from backend.tasks.causal_lm import layer_groups, load_model, load_tokenizer
from backend.tasks.causal_lm import skeleton as skeleton  # the fit estimate counts the policy (backend/models/fit.py)
from backend.tasks.preference import trl_arguments

SAMPLES_FILE = "samples.jsonl"
SAMPLE_EVERY = 5  # steps between two tables of sampled completions
SAMPLES_KEPT = 8  # completions per table
FINAL_STEPS = 5  # logged steps averaged into the run's final reward metrics


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    import datasets

    specs = parse_specs(cfg.reward)
    if not specs:
        raise ValueError("setting 'reward' is empty: GRPO needs at least one reward function, e.g. --reward exact")
    functions, weights = reward_functions(specs, scorer=reward_model_scorer)
    tokenizer = load_tokenizer(cfg, model_dir, chat=True)
    rows = [{"prompt": [dict(m) for m in r["messages"]], "answer": r.get("answer") or ""} for r in train_rows]
    train = datasets.Dataset.from_list(rows)
    model = load_model(cfg, model_dir, dtype)
    model.config.use_cache = True  # sampling answers is most of a GRPO step
    groups = layer_groups(model)
    if cfg.method in ADAPTERS:
        from backend.training.methods import add_lora

        model = add_lora(model, cfg, task_type="CAUSAL_LM")
    tokens = sum(sum(len(m["content"]) for m in r["prompt"]) for r in rows) // 4 * cfg.num_generations
    built = Built(model, tokenizer, train, None, None, tokens, _factory(cfg, tokenizer, functions, weights))
    built.layer_groups = groups
    built.final_metrics = final_metrics
    return built


def _factory(cfg: RunConfig, tokenizer: Any, functions: list[Any], weights: list[float]) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    class Trainer(GRPOTrainer):
        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            table = sample_table(self._logs, self.state.global_step) if "loss" in logs else []
            super().log(logs, start_time)
            if table and (self.state.global_step == 1 or self.state.global_step % SAMPLE_EVERY == 0):
                self.samples = table
                folder = Path(self.args.output_dir).parent  # the run folder (checkpoints/ is inside it)
                with (folder / SAMPLES_FILE).open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"step": self.state.global_step, "rows": table}, ensure_ascii=False) + "\n")

    def make(*, model, args, train_dataset, callbacks, **rest):
        config = trl_arguments(
            GRPOConfig,
            args,
            num_generations=cfg.num_generations,
            max_completion_length=cfg.max_completion_len,
            beta=cfg.beta,
            reward_weights=weights,
            temperature=1.0,
            disable_dropout=True,
        )
        trainer = Trainer(
            model=model,
            reward_funcs=functions,
            args=config,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        trainer.samples = []
        if rest.get("optimizer_cls_and_kwargs") is not None:
            trainer.optimizer_cls_and_kwargs = rest["optimizer_cls_and_kwargs"]
        return trainer

    return make


def sample_table(logs: dict[str, Any], step: int) -> list[dict[str, Any]]:
    """The newest sampled completions with each reward function's score, as plain rows."""
    prompts, completions = list(logs["prompt"]), list(logs["completion"])
    rewards = {name: list(values) for name, values in logs["rewards"].items()}
    rows = []
    for i in range(max(0, len(prompts) - SAMPLES_KEPT), len(prompts)):
        rows.append(
            {
                "prompt": _text(prompts[i]),
                "completion": _text(completions[i]),
                **{name: round(float(values[i]), 4) for name, values in rewards.items() if i < len(values)},
            }
        )
    return rows


def _text(value: Any) -> str:
    if isinstance(value, list):  # chat: the last turn's text
        return str(value[-1].get("content", "")) if value else ""
    return str(value)


def final_metrics(trainer: Any) -> dict[str, Any]:
    """The mean reward per function (`reward_NAME`) over the last FINAL_STEPS logged steps (one step scores only
    batch_size / num_generations prompts: 2 by default), and the last samples table."""
    history = [h for h in trainer.state.log_history if "reward" in h][-FINAL_STEPS:]
    out: dict[str, Any] = {}
    if history:
        out["reward"] = _mean([h["reward"] for h in history])
        names = {k for h in history for k in h if k.startswith("rewards/") and k.endswith("/mean")}
        for key in sorted(names):
            values = [h[key] for h in history if h.get(key) is not None]
            if values:
                out["reward_" + key.removeprefix("rewards/").removesuffix("/mean")] = _mean(values)
    if getattr(trainer, "samples", None):
        out["samples"] = trainer.samples
    return out


def _mean(values: list[float]) -> float:
    return round(sum(float(v) for v in values) / len(values), 4)


def load_reward_model(folder: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a reward run's saved folder (its adapter merged in), in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(folder)
    if (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(path, num_labels=1).merge_and_unload()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if model.config.pad_token_id is None:  # as training set it: batches of several answers need it
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def reward_model_scorer(folder: str) -> Any:
    """A reward run's model (its folder, put in the spec when the run was queued) as f(prompts, answers)."""
    model, tokenizer = load_reward_model(folder)

    def score(prompts: list[str], answers: list[str]) -> list[float]:
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}, {"role": "assistant", "content": a}], tokenize=False
            )
            for p, a in zip(prompts, answers, strict=True)
        ]
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=1024)
        with torch.no_grad():
            return model(**batch).logits[:, 0].float().tolist()

    return score
