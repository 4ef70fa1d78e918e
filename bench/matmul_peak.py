"""The machine's measured matmul peak, the denominator of MFU in bench/sft_speed.py.

    .venv/bin/python bench/matmul_peak.py [--sizes 1024 2048] [--seconds 2]

Times torch.matmul of square matrices in fp32 and bf16 (on CUDA when present, else the CPU with
torch's default threads), best over the sizes, and prints one JSON line:
{"fp32": GFLOP/s, "bf16": GFLOP/s, ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def peak(dtype: torch.dtype, size: int, seconds: float, device: str) -> float:
    """Best GFLOP/s over repeated (size x size) @ (size x size) products (2 * size^3 FLOPs each)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    best = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--seconds", type=float, default=2.0, help="per size and precision")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {name: round(max(peak(dtype, n, args.seconds, device) for n in args.sizes), 1) for name, dtype in
              (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    print(json.dumps({**result, "device": device, "threads": torch.get_num_threads(), "sizes": args.sizes}))


if __name__ == "__main__":
    main()
