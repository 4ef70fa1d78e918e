"""ONNX export (torch.onnx, dynamo exporter) of classifiers and chat LMs, and ONNX Runtime int8 quantization.

Graphs: text classifier `input_ids, attention_mask -> logits`; image classifier `pixel_values -> logits`;
LM `input_ids, attention_mask -> logits` of one forward pass (no KV cache: generation reruns the prompt).
Batch and sequence axes are dynamic. `onnx-int8` is onnxruntime.quantization.quantize_dynamic (QInt8
weights) of the fp32 graph.

    import onnxruntime as ort
    session = ort.InferenceSession("workspace/exports/3/onnx/model.onnx", providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL = "model.onnx"
MAX_BYTES = 2_000_000_000  # a single-file ONNX graph (protobuf) holds at most 2 GB


def _logits_only(model: Any, kind: str) -> Any:
    """The model with named inputs returning the logits tensor alone: what the graph takes and outputs."""
    import torch

    class Image(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.inner(pixel_values=pixel_values).logits

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            extra = {"use_cache": False} if kind == "causal-lm" else {}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    return (Image() if kind == "image-classifier" else Text()).eval()


def input_names(kind: str) -> list[str]:
    return ["pixel_values"] if kind == "image-classifier" else ["input_ids", "attention_mask"]


def export_onnx(model: Any, kind: str, example: dict[str, Any], target: Path) -> Path:
    """Write `target/model.onnx` from `model` (fp32, eval) traced on `example` (a dict of tensors)."""
    import torch

    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if size > MAX_BYTES:
        raise ValueError(
            f"ONNX export: the model has {size / 1e9:.1f} GB of weights, over the 2 GB a single file holds"
        )
    names = input_names(kind)
    args = tuple(torch.cat([example[n]] * 2) for n in names)  # a batch of 1 would be fixed at 1 by torch.export
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {"pixel_values": {0: batch}} if kind == "image-classifier" else {n: {0: batch, 1: seq} for n in names}
    path = target / MODEL
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed):  # the exporter prints its progress
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _logits_only(model.eval(), kind),
            args,
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes=dims,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    log.debug("torch.onnx: %s", printed.getvalue())
    return path


def quantize_onnx(source: Path, target: Path) -> Path:
    """onnxruntime dynamic quantization: QInt8 weights of MatMul/Gemm (and the like), fp32 activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = target / MODEL
    quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8)
    return path


def session(path: Path) -> Any:
    """An onnxruntime CPU InferenceSession of the file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runner(sess: Any, kind: str) -> Any:
    """A callable like a torch model's logits: dict of tensors in, a torch tensor of logits out."""
    import numpy as np
    import torch

    names = input_names(kind)

    def run(inputs: dict[str, Any]) -> Any:
        feed = {}
        for n in names:
            value = inputs[n].numpy() if hasattr(inputs[n], "numpy") else np.asarray(inputs[n])
            feed[n] = value.astype(np.float32 if n == "pixel_values" else np.int64)
        return torch.from_numpy(sess.run(["logits"], feed)[0])

    return run
