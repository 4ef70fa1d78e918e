"""Writes one export format from its fp32 source, loads it back with the runtime that will use it, and
measures it against the source (backend.export.verify): the figures become the Artifact's verification."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from backend.export import verify as ev
from backend.export.sources import Source, eval_batches, prompt_ids, stop_ids
from backend.shrink import from_pretrained

log = logging.getLogger(__name__)


def write_and_check(
    source: Source,
    fmt: str,
    target: Path,
    base: Path,
    adapter: Path | None,
    code: bool,
    rows: list[dict[str, Any]],
    name: str,
) -> dict[str, Any]:
    """Write `fmt` into `target`, load it back, measure it; raises ValueError when it misses its tolerance."""
    extra: dict[str, Any] = {}
    if fmt in ("adapter", "merged"):
        exported, load_s = _write_plain(source, fmt, target, base, adapter, code)
    elif fmt == "int8":
        exported, load_s = _write_int8(source, target)
    elif fmt in ("onnx", "onnx-int8"):
        exported, load_s = _write_onnx(source, fmt, target)
    else:
        exported, load_s, extra = _write_gguf(source, fmt, target, name)
    figures = measure(source, exported, fmt, rows)
    figures.update(format=fmt, load_seconds=round(load_s, 3), tolerance=ev.tolerance_of(fmt), **extra)
    ev.check(fmt, figures, rows=figures.get("eval_rows", 0), kind=source.kind)
    figures["ok"] = True
    return figures


def measure(source: Source, exported: Any, fmt: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Logit difference, latency per sample (export and source), accuracy or greedy agreement."""
    figures = ev.logit_diff(source.logits, exported, source.check_input)
    figures["latency_ms"] = round(ev.latency_ms(exported, source.check_input), 3)
    figures["source_latency_ms"] = round(ev.latency_ms(source.logits, source.check_input), 3)
    if source.kind == "causal-lm":
        prompts = prompt_ids(source.tokenizer, ev.PROMPTS)
        stop = stop_ids(source.tokenizer)
        figures.update(ev.agreement(ev.greedy(source.logits, prompts, stop), ev.greedy(exported, prompts, stop)))
        figures["prompts"] = len(prompts)
    elif rows:
        figures.update(ev.classifier_figures(source.logits, exported, eval_batches(source, rows), source.labels))
    return figures


def _logits_of(model: Any) -> Any:
    return lambda inputs: model(**inputs).logits


def _write_plain(
    source: Source, fmt: str, target: Path, base: Path, adapter: Path | None, code: bool
) -> tuple[Any, float]:
    """adapter: the run's adapter folder copied; merged: the fp32 model (safetensors) + tokenizer/config."""
    if source.kind == "image-classifier":
        from backend.tasks import image_classification as ic

        shutil.copytree(adapter or base, target, dirs_exist_ok=True)
        model, load_s = ev.timed(lambda: ic.load_model(target)[0])
        return _logits_of(model), load_s
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if fmt == "adapter":
        shutil.copytree(adapter, target, dirs_exist_ok=True)
        if source.kind == "text-classifier":
            from backend.export.sources import text_classifier

            model, load_s = ev.timed(lambda: text_classifier(base, target, code, source.tokenizer))
        else:
            from peft import PeftModel

            model, load_s = ev.timed(
                lambda: PeftModel.from_pretrained(
                    AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code, dtype="float32"), target
                )
            )
        return _logits_of(model.eval()), load_s
    source.model.save_pretrained(target, safe_serialization=True)
    source.tokenizer.save_pretrained(target)  # keeps the chat template, so the export chats like the playground
    auto = AutoModelForCausalLM if source.kind == "causal-lm" else AutoModelForSequenceClassification
    model, load_s = ev.timed(lambda: from_pretrained(auto, target, trust_remote_code=code, dtype="float32").eval())
    return _logits_of(model), load_s


def _write_config(source: Source, target: Path) -> None:
    """What a user needs beside bare weights: the config (classes, image size) and the tokenizer."""
    if source.kind == "image-classifier":
        from backend.tasks import image_classification as ic

        ic.save_config(source.model, source.spec, target)
        return
    source.model.config.save_pretrained(target)
    source.tokenizer.save_pretrained(target)


def _write_int8(source: Source, target: Path) -> tuple[Any, float]:
    from backend.export.int8 import load_int8, quantize, save_int8

    _write_config(source, target)
    save_int8(quantize(source.model), target, source.kind)
    model, load_s = ev.timed(lambda: load_int8(target))
    return _logits_of(model), load_s


def _write_onnx(source: Source, fmt: str, target: Path) -> tuple[Any, float]:
    from backend.export import onnx as eo

    _write_config(source, target)
    if fmt == "onnx":
        path = eo.export_onnx(source.model, source.kind, source.check_input, target)
    else:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # the fp32 graph is a step, not a result
            fp32 = eo.export_onnx(source.model, source.kind, source.check_input, Path(tmp))
            path = eo.quantize_onnx(fp32, target)
    sess, load_s = ev.timed(lambda: eo.session(path))
    return eo.runner(sess, source.kind), load_s


def _write_gguf(source: Source, fmt: str, target: Path, name: str) -> tuple[Any, float, dict[str, Any]]:
    """The GGUF + Modelfile, read back twice: gguf.GGUFReader (tensors, metadata) and transformers' loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.export import gguf as eg

    path = eg.write_gguf(source.model, source.tokenizer, target, fmt, name)
    eg.write_modelfile(target, path.name, source.tokenizer)
    info = eg.read_back(path)
    expected = len(
        [
            k
            for k in source.model.state_dict()
            if not (k == "lm_head.weight" and source.model.config.tie_word_embeddings)
        ]
    )
    problems = []
    if info["tensors"] != expected:
        problems.append(f"{info['tensors']} tensors instead of {expected}")
    if info["tokens"] != source.model.config.vocab_size or not info["merges"]:
        problems.append(f"a vocabulary of {info['tokens']} tokens with {info['merges']} merges")
    if source.tokenizer.chat_template and info["chat_template"] != source.tokenizer.chat_template:
        problems.append("no chat template")
    if problems:
        raise ValueError(f"{fmt} export refused: the gguf reader finds {', '.join(problems)} in {path.name}")
    model, load_s = ev.timed(lambda: AutoModelForCausalLM.from_pretrained(target, gguf_file=path.name).eval())
    tokenizer = AutoTokenizer.from_pretrained(target, gguf_file=path.name)
    ids = source.check_input["input_ids"][0].tolist()
    same_tokens = tokenizer(source.tokenizer.decode(ids), add_special_tokens=False)["input_ids"] == ids
    if not same_tokens:
        raise ValueError(
            f"{fmt} export refused: the tokenizer read back from {path.name} splits the check prompt differently"
        )
    extra = {
        "gguf_tensors": info["tensors"],
        "gguf_tensor_types": info["tensor_types"],
        "gguf_tokens": info["tokens"],
        "gguf_merges": info["merges"],
        "gguf_tokenizer_pre": info["tokenizer_pre"],
        "tokenizer_round_trip": same_tokens,
        "modelfile": eg.MODELFILE,
    }
    return _logits_of(model), load_s, extra
