"""Which device and number format a run uses: the fastest the hardware supports, unless overridden.

`RunConfig.devices` is "auto", "cpu", "mps", "cuda" (every visible GPU's first one) or a GPU list
like "cuda:0,1" (one DDP process per GPU). `check_devices` refuses what this machine cannot do
before a run is queued; the worker then calls `resolve_device` and `resolve_precision`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from backend.config import RunConfig


def device_name() -> str:
    """The best device present: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return "cpu"


def resolve_device(devices: str) -> str:
    """The device kind ("cpu", "cuda", "mps") a `RunConfig.devices` value trains on."""
    if devices == "auto":
        return device_name()
    return devices.split(":", 1)[0]


def check_devices(cfg: RunConfig) -> None:
    """Refuse device requests this machine cannot honour, naming the setting and what exists."""
    kind = resolve_device(cfg.devices)
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"setting 'devices': {cfg.devices} asks for a GPU but this machine has none; use cpu")
        missing = [i for i in cfg.gpu_ids if i >= count]
        if missing:
            raise ValueError(
                f"setting 'devices': GPU {', '.join(map(str, missing))} does not exist; "
                f"this machine has {count} (cuda:0 to cuda:{count - 1})"
            )
        if cfg.nproc > count and not cfg.gpu_ids:
            raise ValueError(f"setting 'nproc': {cfg.nproc} processes need {cfg.nproc} GPUs; this machine has {count}")
    if kind == "mps" and not _mps_available():
        raise ValueError("setting 'devices': mps (Apple GPU) is not available here; use auto or cpu")
    resolve_precision(cfg.precision, kind)


@functools.cache
def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run several times faster than fp32 on such CPUs."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> bf16 where fast (CUDA with bf16, or a bf16-capable CPU), fp16 on older CUDA, else fp32."""
    if precision != "auto":
        if precision == "fp16" and device == "cpu":
            raise ValueError("setting 'precision': fp16 is not supported on CPU; use auto, bf16 or fp32")
        if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("setting 'precision': this GPU has no bf16; use auto, fp16 or fp32")
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
