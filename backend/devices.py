"""Which device and number format a run uses: the fastest the hardware supports, unless overridden."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


def device_name() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


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
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
