"""RunConfig: the one typed, validated description of a training run.

The Train tab, the CLI and the worker all build a RunConfig, so defaults live here and nowhere
else. `RunConfig.from_dict` refuses unknown keys and bad values with a message that names the
setting and says what to do.

    cfg = RunConfig(dataset="identity")          # the defaults work on a 2-core CPU
    cfg = RunConfig.from_dict({"dataset": "identity", "method": "full"})
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

Task = Literal["sft", "text-classification", "image-classification"]
Method = Literal["lora", "full"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
Scheduler = Literal["linear", "cosine", "constant_with_warmup"]

CHOICES: dict[str, tuple[str, ...]] = {
    "task": get_args(Task),
    "method": get_args(Method),
    "precision": get_args(Precision),
    "scheduler": get_args(Scheduler),
}

DEFAULT_MODEL = "SmolLM2-135M-Instruct"

# Learning rates that move a 135M model visibly within a few epochs on ~100 rows, without
# wrecking it: LoRA updates few weights, so it tolerates (and needs) a larger step.
DEFAULT_LR: dict[str, float] = {"lora": 5e-4, "full": 5e-5}


@dataclass
class RunConfig:
    """Everything a run needs. `help` metadata feeds the UI hints and the CLI --help."""

    dataset: str = field(default="", metadata={"help": "Dataset name or id (see the Datasets tab)."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Catalog name or local model folder."})
    task: Task = field(default="sft", metadata={"help": "sft: instruction / chat fine-tuning."})
    method: Method = field(default="lora", metadata={"help": "lora: small adapter, fast; full: all weights."})

    epochs: float = field(default=4.0, metadata={"help": "Passes over the training data."})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many optimizer steps (0: use epochs)."})
    learning_rate: float = field(default=0.0, metadata={"help": "Step size (0: the method's default)."})
    batch_size: int = field(default=8, metadata={"help": "Examples per step; lower it if memory runs out."})
    grad_accum: int = field(default=1, metadata={"help": "Steps to accumulate before an update."})
    cutoff_len: int = field(default=512, metadata={"help": "Longer examples are truncated to this many tokens."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps spent warming up the LR."})
    scheduler: Scheduler = field(default="cosine", metadata={"help": "How the learning rate decays."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})

    lora_rank: int = field(default=16, metadata={"help": "Adapter rank: higher learns more, costs more memory."})
    lora_alpha: int = field(default=32, metadata={"help": "Adapter scale; usually 2x the rank."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input."})
    lora_targets: str = field(default="all-linear", metadata={"help": "Modules to adapt: all-linear or a,b,c."})

    train_on_prompt: bool = field(default=False, metadata={"help": "Also learn the prompt tokens."})
    packing: bool = field(default=False, metadata={"help": "Pack each batch into one row (fast with flash attention)."})
    precision: Precision = field(default="auto", metadata={"help": "auto: bf16 where the hardware has it."})
    val_ratio: float = field(default=0.0, metadata={"help": "Share of rows held out for evaluation."})
    logging_steps: int = field(default=1, metadata={"help": "Record loss every N steps."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps (0: each epoch)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    seed: int = field(default=42, metadata={"help": "Random seed for data order and init."})

    def __post_init__(self) -> None:
        self.validate()

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LR[self.method]

    def validate(self) -> None:
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"setting '{name}': {value!r} is not one of {', '.join(choices)}")
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if type(getattr(self, f.name)) in (int, float)}
        for name, value in numbers.items():
            _check(math.isfinite(value), name, "must be a finite number")
        _check(self.epochs > 0 or self.max_steps > 0, "epochs", "must be above 0 (or set max_steps)")
        _check(self.max_steps >= 0, "max_steps", "must be 0 or more")
        _check(self.learning_rate >= 0 and self.learning_rate < 1, "learning_rate", "must be between 0 and 1")
        _check(self.batch_size >= 1, "batch_size", "must be at least 1")
        _check(self.grad_accum >= 1, "grad_accum", "must be at least 1")
        _check(16 <= self.cutoff_len <= 32768, "cutoff_len", "must be between 16 and 32768 tokens")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        _check(self.lora_rank >= 1, "lora_rank", "must be at least 1")
        _check(self.lora_alpha >= 1, "lora_alpha", "must be at least 1")
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        _check(0 <= self.val_ratio < 0.9, "val_ratio", "must be in [0, 0.9)")
        _check(self.logging_steps >= 1, "logging_steps", "must be at least 1")
        _check(self.save_steps >= 0, "save_steps", "must be 0 or more")
        _check(self.save_total_limit >= 1, "save_total_limit", "must be at least 1")
        _check(bool(self.lora_targets.strip(" ,")), "lora_targets", "is empty; use all-linear or module names")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
        clean: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue
            clean[name] = _coerce(name, known[name].default, value)
        return cls(**clean)

    @classmethod
    def help(cls, name: str) -> str:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}[name]


@dataclass
class GenerationConfig:
    """How a model answers: sampled in the playground, greedy (repeatable) for checks and the CLI."""

    max_new_tokens: int = field(default=256, metadata={"help": "Longest answer, in tokens."})
    temperature: float = field(default=0.7, metadata={"help": "0 = always the likeliest token."})
    top_p: float = field(default=0.9, metadata={"help": "Sample from this share of probability."})

    def __post_init__(self) -> None:
        _check(1 <= self.max_new_tokens <= 4096, "max_new_tokens", "must be between 1 and 4096")
        _check(0 <= self.temperature <= 2, "temperature", "must be between 0 and 2")
        _check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")


def _check(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise ValueError(f"setting '{name}' {what}")


def _coerce(name: str, default: Any, value: Any) -> Any:
    """Turn UI/CLI values (often strings or floats) into the field's type, or say which setting is wrong."""
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting '{name}': {value!r} is not a valid {type(default).__name__}") from None


CHAT = GenerationConfig()  # the playground's starting point
GREEDY = GenerationConfig(max_new_tokens=128, temperature=0.0)  # repeatable answers: CLI, API, checks
