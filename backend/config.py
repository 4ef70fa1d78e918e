"""RunConfig: the one typed, validated description of a training run.

The Train tab, the CLI and the worker all build a RunConfig, so defaults live here and nowhere
else. `RunConfig.from_dict` refuses unknown keys and bad values with a message that names the
setting and says what to do.

    cfg = RunConfig(dataset="identity")          # the defaults work on a 2-core CPU
    cfg = RunConfig.from_dict({"dataset": "identity", "method": "full"})
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from backend import alignment, distillation

# distill: a request, not a stored task: a run asked for with --task distill takes its data's task and
# learns from its teacher run (backend/compress/distill.py); see RunConfig.teacher.
Task = Literal["sft", "text-classification", "image-classification", "distill", "dpo", "orpo", "kto", "reward", "grpo"]
CLASSIFIERS = ("text-classification", "image-classification")
Method = Literal["lora", "full", "freeze", "gradual", "qlora"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
Scheduler = Literal["linear", "cosine", "constant_with_warmup"]
Optimizer = Literal["adamw", "adam", "sgd", "rmsprop"]
UnfreezeUnit = Literal["epochs", "steps"]
ChatTemplate = Literal["auto", "chatml", "llama3", "alpaca"]
TRACKERS = ("tensorboard", "mlflow", "wandb", "trackio")  # the Trainer's report_to integrations a run may use

CHOICES: dict[str, tuple[str, ...]] = {
    "task": get_args(Task),
    "method": get_args(Method),
    "precision": get_args(Precision),
    "scheduler": get_args(Scheduler),
    "optimizer": get_args(Optimizer),
    "unfreeze_unit": get_args(UnfreezeUnit),
    "chat_template": get_args(ChatTemplate),
    "loss_type": alignment.LOSS_TYPES,
}
ADAPTERS = ("lora", "qlora")  # methods that train a LoRA adapter and save `adapter/`

DEFAULT_MODEL = "SmolLM2-135M-Instruct"

# Learning rates that move a 135M model visibly within a few epochs on ~100 rows, without
# wrecking it: LoRA updates few weights, so it tolerates (and needs) a larger step.
# Freeze and gradual train fewer, higher weights than full: a step between the two.
# Early stopping without held-out rows: refused when a run is queued (backend/runs/queue.py) and when it
# trains (backend/training/optim.py).
NEEDS_VALIDATION = (
    "setting 'early_stopping_patience' needs a validation set: set val_ratio (e.g. 0.1) "
    "or import a dataset with a validation split"
)
DEFAULT_LR: dict[str, float] = {"lora": 5e-4, "qlora": 5e-4, "full": 5e-5, "freeze": 1e-4, "gradual": 1e-4}

# Each task's starting model, offered first in the Train tab (backend/models/catalog.py lists the rest).
DEFAULT_MODELS: dict[str, str] = {
    "sft": DEFAULT_MODEL,
    "text-classification": "all-MiniLM-L6-v2",
    "image-classification": "resnet18",
}

# Where a task differs from the field defaults below (which suit SFT). `from_dict` applies these to
# the settings a person did not give. Classifiers train every weight by default (a small encoder or
# CNN fits in memory) and hold out a fifth of the rows to report accuracy and F1 each epoch.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "text-classification": {
        "model": DEFAULT_MODELS["text-classification"],
        "method": "full",
        "epochs": 5.0,
        "min_steps": 0,
        "batch_size": 16,
        "cutoff_len": 128,  # short texts; attention cost grows with the square of the length
        "val_ratio": 0.2,
    },
    # GRPO: no KL term by default (TRL's own default): a step needs no reference forward.
    "grpo": {"beta": 0.0},
    "image-classification": {
        "model": DEFAULT_MODELS["image-classification"],
        "method": "full",
        "epochs": 5.0,
        "min_steps": 0,
        "batch_size": 32,
        "val_ratio": 0.2,
    },
}

# Per task and method, the learning rate when none is given (else DEFAULT_LR). A fresh head on an
# encoder wants a larger step than an LM; a CNN (often from random init offline) larger still.
TASK_LR: dict[str, dict[str, float]] = {
    "text-classification": {"full": 1e-4, "freeze": 2e-4, "gradual": 2e-4, "lora": 1e-3, "qlora": 1e-3},
    "image-classification": {"full": 1e-3, "freeze": 1e-3, "gradual": 1e-3, "lora": 2e-3, "qlora": 2e-3},
}


def _only(help: str, **when: tuple[str, ...]) -> dict[str, Any]:
    """Field metadata: the hint plus where the setting applies, e.g. `_only("...", method=ADAPTERS)`.

    `when` maps another setting's name to the values under which this one matters; the Train tab
    hides it elsewhere and the CLI's --help says where it applies.
    """
    return {"help": help, "when": when}


@dataclass
class RunConfig:
    """Everything a run needs. `help` metadata feeds the UI hints and the CLI --help."""

    dataset: str = field(default="", metadata={"help": "Dataset name or id (see the Datasets tab)."})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "Catalog name or local model folder."})
    task: Task = field(default="sft", metadata={"help": alignment.TASK_HELP})
    method: Method = field(
        default="lora",
        metadata={
            "help": "lora: small adapter, fast; full: all weights; freeze: top layers + head; "
            "gradual: unfreeze top-down; qlora: LoRA on a 4/8-bit base (CUDA only)."
        },
    )

    epochs: float = field(default=4.0, metadata={"help": "Passes over the training data."})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many optimizer steps (0: use epochs)."})
    min_steps: int = field(
        default=60,
        metadata=_only("At least this many optimizer steps: small datasets get more epochs (0: off).", task=("sft",)),
    )
    learning_rate: float = field(default=0.0, metadata={"help": "Step size (0: the method's default)."})
    batch_size: int = field(default=8, metadata={"help": "Examples per step; lower it if memory runs out."})
    grad_accum: int = field(default=1, metadata={"help": "Steps to accumulate before an update."})
    cutoff_len: int = field(
        default=512,
        metadata=_only("Longer examples are truncated to this many tokens.", task=("sft", "text-classification")),
    )
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps spent warming up the LR."})
    scheduler: Scheduler = field(default="cosine", metadata={"help": "How the learning rate decays."})
    weight_decay: float = field(default=0.0, metadata={"help": "Pulls weights towards 0 (decoupled for AdamW)."})
    optimizer: Optimizer = field(default="adamw", metadata={"help": "adamw suits nearly everything."})
    momentum: float = field(default=0.9, metadata=_only("Momentum of SGD and RMSprop.", optimizer=("sgd", "rmsprop")))
    max_grad_norm: float = field(default=1.0, metadata={"help": "Clip gradients to this norm (0: no clipping)."})
    grad_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations: less memory, ~30% slower."}
    )
    early_stopping_patience: int = field(
        default=0, metadata={"help": "Stop after N evaluations without improvement (0: off; needs a validation set)."}
    )
    early_stopping_metric: str = field(
        default="loss", metadata={"help": "Validation metric early stopping watches (loss, accuracy, f1_macro...)."}
    )

    freeze_layers: int = field(
        default=2, metadata=_only("Train only the top N layer groups plus the head.", method=("freeze",))
    )
    unfreeze_every: int = field(
        default=1, metadata=_only("Unfreeze one more layer group every N units.", method=("gradual",))
    )
    unfreeze_unit: UnfreezeUnit = field(
        default="epochs", metadata=_only("Unit of unfreeze_every.", method=("gradual",))
    )

    lora_rank: int = field(
        default=16, metadata=_only("Adapter rank: higher learns more, costs more memory.", method=ADAPTERS)
    )
    lora_alpha: int = field(default=32, metadata=_only("Adapter scale; usually 2x the rank.", method=ADAPTERS))
    lora_dropout: float = field(default=0.0, metadata=_only("Dropout on the adapter input.", method=ADAPTERS))
    lora_targets: str = field(
        default="all-linear",
        metadata=_only("Modules to adapt: all-linear or names like q_proj,v_proj.", method=ADAPTERS),
    )
    lora_dora: bool = field(
        default=False, metadata=_only("DoRA: learn magnitude and direction apart; slower.", method=ADAPTERS)
    )
    lora_rslora: bool = field(
        default=False, metadata=_only("rsLoRA: scale by alpha/sqrt(rank); steadier at high ranks.", method=ADAPTERS)
    )
    qlora_bits: int = field(default=4, metadata=_only("Bits of the frozen base weights: 4 or 8.", method=("qlora",)))

    train_on_prompt: bool = field(default=False, metadata=_only("Also learn the prompt tokens.", task=("sft",)))
    packing: bool = field(
        default=False, metadata=_only("Pack each batch into one row (fast with flash attention).", task=("sft",))
    )
    chat_template: ChatTemplate = field(
        default="auto", metadata=_only("auto: the tokenizer's own; else one for models without.", task=("sft",))
    )
    eval_samples: int = field(
        default=16, metadata=_only("Validation rows answered and scored with BLEU-4/ROUGE-L (0: off).", task=("sft",))
    )
    eval_suites: str = field(default="", metadata=_only("Suites scored on base and run at the end: a,b", task=("sft",)))
    image_size: int = field(
        default=0,
        metadata=_only(
            "Pixels per side the images are resized to (0: auto, their median size within 32-224).",
            task=("image-classification",),
        ),
    )
    image_flip: bool = field(
        default=True,
        metadata=_only(
            "Mirror training images at random; turn off for text or digits.", task=("image-classification",)
        ),
    )
    precision: Precision = field(default="auto", metadata={"help": "auto: bf16 where the hardware has it."})
    devices: str = field(
        default="auto", metadata={"help": "auto, cpu, mps, cuda, or GPUs like cuda:0,1 (one process each)."}
    )
    nproc: int = field(
        default=1, metadata={"help": "Training processes on CPU (DDP over gloo); GPUs: one per listed GPU."}
    )
    val_ratio: float = field(default=0.0, metadata={"help": "Share of rows held out for evaluation."})
    eval_steps: int = field(
        default=0,
        metadata={"help": "Evaluate every N steps (0: each epoch; with early stopping, at each checkpoint)."},
    )
    logging_steps: int = field(default=1, metadata={"help": "Record loss every N steps."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps (0: each epoch)."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    seed: int = field(default=42, metadata={"help": "Random seed for data order and init."})
    report_to: str = field(
        default="", metadata={"help": f"Also log to these trackers, comma-separated: {', '.join(TRACKERS)}."}
    )
    teacher: int = distillation.TEACHER  # learn from a completed run: backend/distillation.py
    temperature: float = distillation.TEMPERATURE
    alpha: float = distillation.ALPHA
    layers_from_teacher: int = distillation.LAYERS_FROM_TEACHER
    sequence_level: bool = distillation.SEQUENCE_LEVEL
    beta: float = alignment.BETA  # dpo, orpo, kto, reward, grpo: backend/alignment.py
    loss_type: str = alignment.LOSS_TYPE
    from_run: int = alignment.FROM_RUN
    num_generations: int = alignment.NUM_GENERATIONS
    max_completion_len: int = alignment.MAX_COMPLETION_LEN
    reward: str = alignment.REWARD
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Run Python code shipped in the model folder (auto_map). It runs with your rights: "
            "only for models whose authors you trust."
        },
    )

    def __post_init__(self) -> None:
        self.validate()

    @property
    def lr(self) -> float:
        return self.learning_rate or TASK_LR.get(self.task, {}).get(self.method) or DEFAULT_LR[self.method]

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
        _check(self.min_steps >= 0, "min_steps", "must be 0 or more")
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
        _check(self.eval_steps >= 0, "eval_steps", "must be 0 or more")
        _check(self.save_total_limit >= 1, "save_total_limit", "must be at least 1")
        _check(bool(self.lora_targets.strip(" ,")), "lora_targets", "is empty; use all-linear or module names")
        _check(self.max_grad_norm >= 0, "max_grad_norm", "must be 0 (off) or more")
        _check(self.weight_decay >= 0, "weight_decay", "must be 0 or more")
        _check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience", "must be 0 (off) or more")
        _check(self.freeze_layers >= 0, "freeze_layers", "must be 0 (head only) or more")
        _check(self.qlora_bits in (4, 8), "qlora_bits", "must be 4 or 8")
        _check(self.eval_samples >= 0, "eval_samples", "must be 0 (off) or more")
        _check(self.nproc >= 1, "nproc", "must be at least 1")
        unknown = [t for t in self.trackers if t not in TRACKERS]
        _check(not unknown, "report_to", f"names {', '.join(unknown)}; choose among {', '.join(TRACKERS)}")
        _check(self.image_size == 0 or 16 <= self.image_size <= 1024, "image_size", "must be 0 (auto) or 16-1024")
        self._validate_distillation()
        alignment.validate(self)
        if self.method == "gradual":
            _check(self.unfreeze_every >= 1, "unfreeze_every", "must be at least 1 for the gradual method")
        _check(_DEVICES.fullmatch(self.devices) is not None, "devices", "must be auto, cpu, mps, cuda or cuda:0,1,...")
        if self.devices.startswith("cuda:") and self.nproc > 1:
            _check(self.nproc == len(self.gpu_ids), "nproc", "must match the number of GPUs listed in devices")
        if self.devices == "mps":
            _check(self.nproc == 1, "nproc", "must be 1 on mps (one Apple GPU)")

    def _validate_distillation(self) -> None:
        _check(self.teacher >= 0, "teacher", "must be a run id (0: no distillation)")
        _check(self.temperature > 0, "temperature", "must be above 0 (1: the teacher's own probabilities)")
        _check(0 <= self.alpha <= 1, "alpha", "must be in [0, 1] (1: true labels only, 0: the teacher only)")
        _check(self.layers_from_teacher >= 0, "layers_from_teacher", "must be 0 (use model) or more")
        if self.task == "distill" or self.layers_from_teacher:
            _check(self.teacher > 0, "teacher", "is 0: distillation needs a completed teacher run (--teacher RUN)")

    @property
    def gpu_ids(self) -> list[int]:
        """GPU indices named in `devices` ("cuda:0,2" -> [0, 2]); empty when none are named."""
        return [int(i) for i in self.devices.split(":", 1)[1].split(",")] if self.devices.startswith("cuda:") else []

    @property
    def trackers(self) -> list[str]:
        """report_to as a list ("tensorboard, mlflow" -> ["tensorboard", "mlflow"])."""
        return [t.strip().lower() for t in self.report_to.split(",") if t.strip()]

    @property
    def world_size(self) -> int:
        """Training processes: one per listed GPU, else `nproc`."""
        return len(self.gpu_ids) or self.nproc

    @classmethod
    def applies(cls, name: str, **current: Any) -> bool:
        """Whether setting `name` matters when the others are `current` (e.g. task="sft", method="lora").

        Settings not given in `current` are not checked, so `applies("lora_rank", method="full")` is False
        and `applies("lora_rank", task="sft")` is True.
        """
        when = {f.name: f.metadata.get("when", {}) for f in fields(cls)}[name]
        return all(current[k] in allowed for k, allowed in when.items() if k in current)

    @classmethod
    def where(cls, name: str) -> str:
        """Where a setting applies, in words ("method: lora, qlora"); empty when it always does."""
        when = {f.name: f.metadata.get("when", {}) for f in fields(cls)}[name]
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in when.items())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """A config from UI/CLI/DB values; settings not given take the task's defaults (TASK_DEFAULTS)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
        clean: dict[str, Any] = {}
        given = {k: v for k, v in data.items() if v is not None}
        for name, value in {**TASK_DEFAULTS.get(str(given.get("task", "sft")), {}), **given}.items():
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
    top_k: int = field(default=50, metadata={"help": "Sample from this many likeliest tokens (0 = all)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Above 1 discourages repeating tokens."})
    seed: int = field(default=-1, metadata={"help": "Makes sampled answers repeatable (-1 = random)."})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "The answer ends before any of these texts."})

    def __post_init__(self) -> None:
        _check(1 <= self.max_new_tokens <= 4096, "max_new_tokens", "must be between 1 and 4096")
        _check(0 <= self.temperature <= 2, "temperature", "must be between 0 and 2")
        _check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        _check(0 <= self.top_k <= 1000, "top_k", "must be between 0 (off) and 1000")
        _check(0.5 <= self.repetition_penalty <= 2, "repetition_penalty", "must be between 0.5 and 2 (1 = off)")
        _check(-1 <= self.seed < 2**32, "seed", "must be -1 (random) or a number from 0 to 2**32 - 1")
        self.stop = tuple(s for s in self.stop if s)  # empty entries would stop every answer at once


_DEVICES = re.compile(r"auto|cpu|mps|cuda|cuda:\d+(,\d+)*")


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
# Playground models stay loaded up to this many MB in all (least recently used unloaded first);
# $TUNEBOARD_MODEL_CACHE_MB overrides it. 2 GB holds SmolLM2-135M (0.5 GB in fp32) with two fine-tunes.
MODEL_CACHE_MB = 2048
