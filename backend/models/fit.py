"""Will it fit? Peak memory of a training run, estimated before it is queued, next to what the device has.

    estimate_run(cfg, model_dir)   # {"estimate_mb", "available_mb", "fits", "advice", "parts"}

Peak = runtime + weights + optimizer state + the larger of activations (kept for the backward pass) and
gradients with the optimizer step's temporaries; on a CPU the peak is the process's resident memory, so
the runtime (torch, transformers, peft imported) counts. Parameter counts come from the task's weightless
skeleton (meta device), so weights are exact; activations count what autograd keeps per layer and token
(Korthikanti et al. 2022; on CUDA SDPA keeps no attention matrix) and a meta-device forward for CNNs.
Preference and RL tasks: DPO, ORPO and reward runs forward chosen and rejected together (twice the
sequences); DPO and KTO trained in full (or freeze) keep a frozen second copy as the reference, and so
does GRPO with beta > 0 (with LoRA the reference is the adapter-disabled model: no copy); a GRPO step's
sequences are the prompt plus `max_completion_len` sampled tokens.
The skeleton's counts are kept per model (backend/models/summary.py), so only a model's first check
builds one.
docs/benchmarks.md compares it with measured peaks.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from backend.config import ADAPTERS, RunConfig

log = logging.getLogger(__name__)

MB = 2**20
CPU_RUNTIME_MB = 900.0  # a worker's resident memory after importing torch, transformers and peft (measured here)
CUDA_RUNTIME_MB = 400.0  # the CUDA context and allocator slack beside what torch allocates
TEMPLATE_TOKENS = 32  # role markers and a default system prompt around a row's text
OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "sgd": 4, "rmsprop": 4}  # state per trainable parameter (fp32)
PAIRED_SEQUENCES = {"dpo": 2, "orpo": 2, "reward": 2}  # chosen and rejected go through the model together
LANGUAGE_MODEL_TASKS = ("sft", "dpo", "orpo", "kto", "grpo")  # logits over the vocabulary are kept


def estimate_run(
    cfg: RunConfig, model_dir: Path, device: str | None = None, cache_dir: Path | None = None
) -> dict[str, Any]:
    """The estimate for `cfg` on its device, the memory available there, and what to change if it won't fit.
    `cache_dir` keeps the model's counts for the next check (a models folder's `.summaries/`)."""
    from backend.devices import resolve_device
    from backend.models.summary import summarize

    summary = summarize(cfg, model_dir, cache_dir)
    if summary is None:
        raise ValueError(f"task '{cfg.task}' has no memory estimate")
    device = device or resolve_device(cfg.devices)
    parts = _parts(cfg, summary, device)
    estimate = _peak(parts)
    available = available_mb(device, cfg)
    fits = estimate <= available
    advice = "" if fits else _advice(cfg, summary, device, estimate, available)
    return {
        "seq_len": cfg.cutoff_len,
        "estimate_mb": round(estimate),
        "available_mb": round(available),
        "fits": fits,
        "advice": advice,
        "device": device,
        "parts": {k: round(v, 2) for k, v in parts.items()},
    }


def check_fit(cfg: RunConfig, models_dir: Path, longest_chars: int | None = None) -> dict[str, Any] | None:
    """The estimate for a run about to be queued, or a ValueError with the advice when it will not fit.
    None when the model is not on disk yet (a download comes first; the worker meets the real size)."""
    out = estimate_for(cfg, models_dir, longest_chars)
    if out is not None and not out["fits"]:
        raise ValueError(f"model '{cfg.model}' will not fit: {out['advice']}")
    return out


def estimate_for(cfg: RunConfig, models_dir: Path, longest_chars: int | None = None) -> dict[str, Any] | None:
    """`estimate_run` for a model on disk; None when there is nothing to judge yet (not downloaded, not
    converted, a task without a skeleton) or the estimate failed (logged; it never blocks a run).

    Batches are padded to their longest row, not to cutoff_len: with the dataset's longest row in
    characters (its stats), sequences count at most one token per character plus the chat template's."""
    cfg = padded_to(cfg, longest_chars)
    from backend.models.catalog import BUNDLED, is_materialized, resolve_model

    if cfg.model in BUNDLED and not is_materialized(cfg.model, models_dir):
        return None  # converted on first use (~20 s): not while a run is being queued
    try:
        folder = resolve_model(cfg.model, models_dir, cfg.trust_remote_code)
        out = estimate_run(cfg, folder, cache_dir=Path(models_dir) / ".summaries")
    except Exception as e:  # an estimate never blocks a run it cannot judge
        log.warning("no memory estimate for %s: %s", cfg.model, e)
        return None
    return out


def padded_to(cfg: RunConfig, longest_chars: int | None) -> RunConfig:
    """`cfg` with cutoff_len at most the dataset's longest row (one token per character at most, plus
    the chat template's): batches are padded to their longest row, not to cutoff_len."""
    if not longest_chars or cfg.task == "image-classification":
        return cfg
    return dataclasses.replace(cfg, cutoff_len=max(16, min(cfg.cutoff_len, int(longest_chars) + TEMPLATE_TOKENS)))


def describe(out: dict[str, Any]) -> str:
    """'needs about 2.3 GB; cpu has 18.1 GB free' for a status line."""
    return (
        f"needs about {out['estimate_mb'] / 1024:.1f} GB; {out['device']} has {out['available_mb'] / 1024:.1f} GB free"
    )


def _peak(parts: dict[str, float]) -> float:
    """The backward pass frees activations as it writes gradients, and the optimizer step (gradients plus
    as much again in temporaries) comes after it: the peak holds the larger of the two, not both."""
    steady = parts["runtime"] + parts["weights"] + parts.get("reference", 0.0) + parts["optimizer"]
    return steady + max(parts["activations"] + parts["gradients"] / 2, 2 * parts["gradients"])


def available_mb(device: str, cfg: RunConfig) -> float:
    """Free memory of one GPU the run uses, or the memory a CPU run may take (MemAvailable, per process)."""
    if device == "cuda":
        import torch

        index = cfg.gpu_ids[0] if cfg.gpu_ids else 0
        free, _ = torch.cuda.mem_get_info(index)
        return free / MB
    free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / MB
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) / 1024
    except OSError:
        pass
    try:  # in a container the cgroup's limit binds before the machine's memory does
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            free = min(free, (int(limit) - used) / MB)
    except (OSError, ValueError):
        pass
    return free / max(cfg.world_size, 1)


def _parts(cfg: RunConfig, summary: dict[str, Any], device: str) -> dict[str, float]:
    from backend.devices import resolve_precision

    precision = resolve_precision(cfg.precision, device)
    half = precision in ("bf16", "fp16")
    total = summary["total"]
    trainable = _trainable(cfg, summary)
    if cfg.method == "qlora":
        weights = total * cfg.qlora_bits / 8 + trainable * 4
    elif cfg.method in ADAPTERS:
        weights = total * (2 if half else 4) + trainable * 4
    else:
        weights = total * 4  # full and freeze train (and keep) fp32 weights; autocast computes in half
    optimizer = trainable * OPTIMIZER_BYTES[cfg.optimizer]
    gradients = trainable * 4  # fp32, like the trainable weights
    activations = _activations(cfg, summary, half, device)
    runtime = CPU_RUNTIME_MB * MB if device == "cpu" else CUDA_RUNTIME_MB * MB
    return {
        "weights": weights / MB,
        "reference": _reference(cfg, summary, half) / MB,
        "gradients": gradients / MB,
        "optimizer": optimizer / MB,
        "activations": activations / MB,
        "runtime": runtime / MB,
    }


def _reference(cfg: RunConfig, summary: dict[str, Any], half: bool) -> float:
    """Bytes of the frozen reference model: a second copy unless LoRA can switch its adapter off."""
    if cfg.method in ADAPTERS:
        return 0.0
    if cfg.task in ("dpo", "kto") or (cfg.task == "grpo" and cfg.beta > 0):
        return summary["total"] * 4  # a copy of the model as it starts, in the dtype it trains in
    return 0.0


def _trainable(cfg: RunConfig, summary: dict[str, Any]) -> int:
    if cfg.method in ("full", "gradual"):  # gradual ends with every layer unfrozen
        return summary["total"]
    groups = summary["groups"]
    if cfg.method == "freeze":  # the top freeze_layers groups; the last group holds the head
        return sum(groups[-cfg.freeze_layers :]) if cfg.freeze_layers else groups[-1]
    lora = cfg.lora_rank * summary["lora_io"]
    return lora + (summary["head"] if cfg.task != "sft" else 0)


def _activations(cfg: RunConfig, summary: dict[str, Any], half: bool, device: str) -> float:
    """Bytes kept for the backward pass in one step of `batch_size` examples."""
    shape = summary["shape"]
    if shape is None:  # a CNN: every leaf module's output, plus the inputs some layers keep (ReLU masks, pooling)
        return cfg.batch_size * summary["image_outputs"] * (2 if half else 4) * 1.5
    hidden, inner, layers = shape["hidden"], shape["inner"], shape["layers"]
    seq = cfg.cutoff_len + (cfg.max_completion_len if cfg.task == "grpo" else 0)  # GRPO: prompt + sampled answer
    sequences = cfg.batch_size * PAIRED_SEQUENCES.get(cfg.task, 1)
    tokens = sequences * seq
    act = 2 if half else 4
    # Per token and layer, what autograd keeps, in hidden- and inner-sized tensors: about 10 + 4 (norms,
    # q/k/v/o and MLP inputs, rotary q/k or dropout masks, residuals); a causal LM trained in full keeps
    # about half as much. Fitted to the peaks measured here (benchmarks.md: "Will it fit").
    scale = 0.5 if cfg.task == "sft" and cfg.method not in ADAPTERS else 1.0
    if cfg.task in PAIRED_SEQUENCES:  # fitted: LoRA-DPO, batch 8 of examples/concise's longest pairs, 6.2 GB measured
        scale = 0.5
    per_layer = tokens * scale * (10 * hidden + 4 * inner) * act
    if device != "cuda":  # no flash kernel for training here: softmax(QK^T) and its dropout input are kept
        per_layer += 2 * sequences * shape["heads"] * seq**2 * act
    kept = 2 * tokens * hidden * act * layers + per_layer if cfg.grad_checkpointing else per_layer * layers
    logits = 0
    if cfg.task in LANGUAGE_MODEL_TASKS:  # fp32 logits, the shifted copy, their log-softmax and its gradient
        logits = 4 * tokens * shape["vocab"] * 4 * (0.5 if cfg.task in PAIRED_SEQUENCES else 1)
    return kept + logits


def _advice(cfg: RunConfig, summary: dict[str, Any], device: str, estimate: float, available: float) -> str:
    """What to change, each with its own estimate: the first lines that fit are the ones to try."""
    options: list[tuple[str, dict[str, Any]]] = []
    if cfg.method in ("full", "freeze", "gradual"):
        options.append(("method lora", {"method": "lora"}))
    if device == "cuda" and cfg.method != "qlora":
        options.append(("method qlora (4-bit base)", {"method": "qlora", "qlora_bits": 4}))
    if not cfg.grad_checkpointing:
        options.append(("gradient checkpointing", {"grad_checkpointing": True}))
    if cfg.batch_size > 1:
        options.append((f"batch size {cfg.batch_size // 2}", {"batch_size": cfg.batch_size // 2}))
    if cfg.task == "grpo" and cfg.max_completion_len > 64:
        options.append(
            (f"max_completion_len {cfg.max_completion_len // 2}", {"max_completion_len": cfg.max_completion_len // 2})
        )
    if cfg.cutoff_len > 256 and cfg.task != "image-classification":
        options.append((f"cutoff_len {cfg.cutoff_len // 2}", {"cutoff_len": cfg.cutoff_len // 2}))
    tips = []
    for label, change in options:
        other = dataclasses.replace(cfg, **change)
        tips.append(f"{label}: about {_peak(_parts(other, summary, device)) / 1024:.1f} GB")
    return f"needs about {estimate / 1024:.1f} GB but {device} has {available / 1024:.1f} GB free; try " + "; ".join(
        tips
    )
