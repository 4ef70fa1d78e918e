"""Device slots: which devices a queued run may start on, given what the running runs hold.

A slot is a device ("cpu", "cuda:0", ...) with a capacity: one run per GPU and one run on the CPU
by default (configurable). A run asks for devices in Run.devices: "cpu", "cuda:1", "cuda:0,1",
or nothing / "auto" for one free slot (a GPU when there is one, else the CPU).

    slots = Slots.detect(cpu_runs=1, runs_per_gpu=1)
    slots.assign(None, busy=Counter({"cuda:0": 1}))   # -> ["cuda:1"], or None when nothing fits
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from backend import cpu

CPU = "cpu"
_DEVICE = re.compile(r"^(cpu|cuda:\d+)$")


def parse_devices(value: str | None) -> list[str] | None:
    """'cuda:0,1' -> ['cuda:0', 'cuda:1']; None, '', 'auto', 'cuda' or 'mps' -> None (any free slot)."""
    if value is None or value.strip().lower() in ("", "auto", "cuda", "mps"):
        return None
    out: list[str] = []
    for part in (p.strip().lower() for p in value.split(",") if p.strip()):
        if part.isdigit():  # "cuda:0,1": the 1 continues the previous kind
            part = f"cuda:{part}"
        if not _DEVICE.match(part):
            raise ValueError(f"setting 'devices': {value!r} is not auto, cpu, cuda:N or cuda:N,M")
        if part not in out:
            out.append(part)
    if CPU in out and len(out) > 1:
        raise ValueError(f"setting 'devices': {value!r} mixes cpu with GPUs; use cpu or cuda:N,M")
    return out


def format_devices(devices: list[str]) -> str:
    return ",".join(devices)


@functools.cache
def gpu_count() -> int:
    """GPUs the workers can see (CUDA_VISIBLE_DEVICES respected), without starting CUDA here."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return 0
    # No NVIDIA driver (nor ROCm) on this machine: no GPU, and no torch import (seconds) to learn it.
    if not Path("/proc/driver/nvidia/gpus").is_dir() and not Path("/dev/kfd").exists():
        return 0
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no torch or a broken driver: train on the CPU
        return 0


@dataclass(frozen=True)
class Slots:
    """Capacity per device. `assign` picks devices for a run, or None when it must wait."""

    capacity: dict[str, int]

    @classmethod
    def detect(cls, cpu_runs: int = 1, runs_per_gpu: int = 1, gpus: int | None = None) -> Slots:
        if cpu_runs < 0 or runs_per_gpu < 1:
            raise ValueError("slots: cpu runs must be 0 or more and runs per GPU at least 1")
        gpus = gpu_count() if gpus is None else gpus
        capacity = {f"cuda:{i}": runs_per_gpu for i in range(gpus)}
        capacity[CPU] = cpu_runs
        return cls(capacity)

    @property
    def gpus(self) -> list[str]:
        return [d for d in self.capacity if d != CPU]

    def check(self, devices: list[str] | None) -> str | None:
        """Why a request can never run here (a GPU that does not exist), or None."""
        if devices is None:
            return None if any(self.capacity.values()) else "no device slot is configured"
        missing = [d for d in devices if self.capacity.get(d, 0) < 1]
        if not missing:
            return None
        have = ", ".join(d for d, n in self.capacity.items() if n) or "none"
        return f"device(s) {', '.join(missing)} are not available here (available: {have})"

    def assign(self, devices: list[str] | None, busy: Counter) -> list[str] | None:
        def free(d: str) -> bool:
            return busy.get(d, 0) < self.capacity.get(d, 0)

        if devices is not None:
            return devices if all(free(d) for d in devices) else None
        # Any one free slot: the least busy GPU first, the CPU only on a machine without GPUs.
        gpus = sorted(self.gpus, key=lambda d: busy.get(d, 0))
        for d in gpus or [CPU]:
            if free(d):
                return [d]
        return None


def worker_env(devices: list[str], processes: int = 1) -> dict[str, str]:
    """Environment for a worker on `devices`: only those GPUs are visible (none for the CPU); on the
    CPU, its `processes` get their share of the cores (backend.cpu)."""
    env = dict(os.environ)
    if devices == [CPU]:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.update(cpu.worker_env(processes))
    else:
        physical = [d.split(":")[1] for d in devices]
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:  # our cuda:N is the N-th visible device of the supervisor's own mask
            mask = [v.strip() for v in visible.split(",")]
            physical = [mask[int(i)] for i in physical if int(i) < len(mask)]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(physical)
    return env
