"""Quantized exports vs fp32: linear-weight bytes, CPU latency per sample, accuracy; GGUF sizes of SmolLM2.

    .venv/bin/python bench/export_speed.py                  # both parts
    .venv/bin/python bench/export_speed.py --only classifier
    .venv/bin/python bench/export_speed.py --only gguf

- classifier: all-MiniLM-L6-v2 fine-tuned on examples/support_tickets.csv (`train --task
  text-classification --epochs 3` through the CLI), exported as int8 (torch.ao), onnx and onnx-int8
  through backend.export.exporter (so each is verified), then, in this one process: the bytes of the
  Linear/MatMul weights (fp32 vs int8), and the latency of one validation row at a time on the CPU,
  the four variants interleaved round by round so machine noise hits them alike. Targets (issue 7):
  >= 3.5x smaller linear weights, >= 1.5x faster per sample, <= 1 point accuracy drop.
- gguf: the bundled SmolLM2-135M-Instruct (fp32 safetensors, materialized from its GGUF) written as
  GGUF F16 / Q8_0 / Q4_0 by backend.export.gguf, sizes vs the fp32 safetensors, and the logits of
  transformers' GGUF loader vs the fp32 model on a chat prompt.
Prints one JSON line per part.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.classification_quality import cli  # noqa: E402 - the CLI as a user runs it, JSON out

ROUNDS = 5  # passes over the validation rows, variants interleaved


def linear_bytes_torch(model) -> int:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    total = 0
    for m in model.modules():
        if isinstance(m, QLinear):
            w = m.weight()
            total += w.numel() * w.element_size() + 8 + 8  # int8 values + scale + zero point
        elif isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def matmul_bytes_onnx(path: Path) -> int:
    """Bytes of the 2-D weight initializers that feed MatMul/Gemm (directly or through DequantizeLinear)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    total = 0
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm", "MatMulInteger", "DynamicQuantizeMatMul", "DequantizeLinear"):
            for name in node.input:
                if name in inits and len(inits[name].dims) == 2:
                    total += numpy_helper.to_array(inits[name]).nbytes
    return total


def classifier(tmp: Path) -> dict:
    import torch

    from backend.export.exporter import export_run
    from backend.export.int8 import load_int8
    from backend.export.onnx import runner, session
    from backend.export.sources import load_source, text_input
    from backend.runs.results import model_folder
    from backend.services import Services

    ws = tmp / "ws"
    cli(ws, "datasets", "add", str(ROOT / "examples" / "support_tickets.csv"), "--task", "text-classification")
    start = time.perf_counter()
    run = cli(ws, "train", "--task", "text-classification", "--dataset", "support_tickets", "--epochs", "3", "--wait")
    train_s = time.perf_counter() - start
    services = Services.open(ws)
    exports = {
        fmt: export_run(services.database, services.workspace, run["id"], fmt) for fmt in ("int8", "onnx", "onnx-int8")
    }
    source = load_source("text-classification", *model_folder(services.database, services.workspace, run["id"]))
    from backend.export.exporter import validation_rows
    from backend.runs.queue import get_run

    rows = validation_rows(services.workspace, get_run(services.database, run["id"]))
    samples = [text_input(source.tokenizer, [r["text"]], None, source.max_length) for r in rows]
    int8 = load_int8(Path(exports["int8"]["path"]))
    variants = {
        "fp32": source.logits,
        "int8": lambda x: int8(**x).logits,
        "onnx": runner(session(Path(exports["onnx"]["path"]) / "model.onnx"), source.kind),
        "onnx-int8": runner(session(Path(exports["onnx-int8"]["path"]) / "model.onnx"), source.kind),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for fn in variants.values():  # warm-up
            fn(samples[0])
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                t = time.perf_counter()
                for x in samples:
                    fn(x)
                times[name].append((time.perf_counter() - t) / len(samples) * 1000)
    ms = {k: statistics.median(v) for k, v in times.items()}
    fp32_linear = linear_bytes_torch(source.model)
    sizes = {
        "fp32": fp32_linear,
        "int8": linear_bytes_torch(int8),
        "onnx": matmul_bytes_onnx(Path(exports["onnx"]["path"]) / "model.onnx"),
        "onnx-int8": matmul_bytes_onnx(Path(exports["onnx-int8"]["path"]) / "model.onnx"),
    }
    return {
        "part": "classifier",
        "model": "all-MiniLM-L6-v2",
        "train_seconds": round(train_s, 1),
        "validation_rows": len(samples),
        "threads": torch.get_num_threads(),
        "ms_per_sample": {k: round(v, 2) for k, v in ms.items()},
        "speedup_vs_fp32": {k: round(ms["fp32"] / v, 2) for k, v in ms.items()},
        "linear_weight_bytes": sizes,
        "linear_weight_ratio_vs_fp32": {k: round(fp32_linear / v, 2) for k, v in sizes.items() if v},
        "folder_mb": {k: round(e["size_bytes"] / 1e6, 1) for k, e in exports.items()},
        "accuracy": {
            "fp32": exports["int8"]["verification"]["source_accuracy"],
            **{k: e["verification"]["accuracy"] for k, e in exports.items()},
        },
        "accuracy_delta_points": {k: round(e["verification"]["accuracy_delta"] * 100, 2) for k, e in exports.items()},
    }


def gguf_sizes(tmp: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.export import gguf as eg
    from backend.export.sources import chat_input
    from backend.models.catalog import resolve_model
    from backend.workspace import Workspace

    folder = resolve_model("SmolLM2-135M-Instruct", Workspace.resolve(tmp / "ws").models_dir)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    fp32 = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    inputs = chat_input(tokenizer)
    with torch.no_grad():
        ref = model(**inputs).logits
    out: dict = {"part": "gguf", "model": "SmolLM2-135M-Instruct", "fp32_safetensors_mb": round(fp32 / 1e6, 1)}
    for fmt in eg.QUANTS:
        target = tmp / fmt
        target.mkdir()
        start = time.perf_counter()
        path = eg.write_gguf(model, tokenizer, target, fmt, "SmolLM2-135M-Instruct")
        write_s = time.perf_counter() - start
        loaded = AutoModelForCausalLM.from_pretrained(target, gguf_file=path.name).eval()
        with torch.no_grad():
            got = loaded(**inputs).logits
        out[fmt] = {
            "mb": round(path.stat().st_size / 1e6, 1),
            "x_smaller_than_fp32": round(fp32 / path.stat().st_size, 2),
            "write_seconds": round(write_s, 1),
            "max_abs_logit_diff": round(float((ref - got).abs().max()), 4),
            "rel_logit_diff": round(float((ref - got).abs().max() / ref.abs().max()), 4),
            "same_next_token": bool(ref[0, -1].argmax() == got[0, -1].argmax()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["classifier", "gguf"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "classifier"):
            (Path(tmp) / "c").mkdir()
            print(json.dumps(classifier(Path(tmp) / "c")), flush=True)
        if args.only in (None, "gguf"):
            (Path(tmp) / "g").mkdir()
            print(json.dumps(gguf_sizes(Path(tmp) / "g")), flush=True)


if __name__ == "__main__":
    main()
