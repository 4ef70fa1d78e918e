"""The fp32 source an export is made from and checked against: a run's model (LoRA merged in), its
tokenizer, a fixed check input, and the data the check scores (validation rows, or fixed chat prompts)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHECK_PROMPT = [{"role": "user", "content": "Who are you? 你是谁？"}]
CHECK_TEXT = "The parcel arrived late and the box was damaged. 包裹晚到了。"  # what a text classifier is checked on
CLASSES_FILE = "classes.json"  # beside a text classifier's adapter: its class names in id order
EVAL_BATCH = 16
KINDS = {"sft": "causal-lm", "text-classification": "text-classifier", "image-classification": "image-classifier"}


@dataclass
class Source:
    kind: str  # causal-lm, text-classifier, image-classifier
    model: Any  # fp32, eval mode, any LoRA merged in
    tokenizer: Any | None
    check_input: dict[str, Any]  # one sample: logit difference and latency are measured on it
    labels: list[str] = field(default_factory=list)  # classifiers: class names in id order
    spec: dict[str, Any] = field(default_factory=dict)  # image classifiers: config.json
    max_length: int = 512  # text classifiers: tokens per row, as far as the position table reaches

    def logits(self, inputs: dict[str, Any]) -> Any:
        return self.model(**inputs).logits


def load_source(task: str, base: Path, adapter: Path | None, code: bool) -> Source:
    """The run's model as the export's fp32 source. `code`: the run's trust_remote_code choice."""
    kind = KINDS[task]
    if kind == "image-classifier":
        import torch

        from backend.tasks import image_classification as ic

        model, spec = ic.load_model(adapter or base)
        size = spec["image_size"]
        pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        return Source(kind, model.float().eval(), None, {"pixel_values": pixels}, list(spec["classes"]), spec)
    if kind == "text-classifier":
        from backend.tasks.text_classification import load_tokenizer

        tokenizer = load_tokenizer(adapter or base, code)  # with the pad token training gave it
        model = text_classifier(base, adapter, code, tokenizer)
        model = model.merge_and_unload() if adapter is not None else model
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        longest = min(512, getattr(model.config, "max_position_embeddings", None) or 512)
        check = text_input(tokenizer, [CHECK_TEXT], None, longest)
        return Source(kind, model.float().eval(), tokenizer, check, labels, max_length=longest)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code, dtype="float32")
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter or base, trust_remote_code=code)
    return Source(kind, model.eval(), tokenizer, chat_input(tokenizer))


def text_classifier(base: Path, adapter: Path | None, code: bool, tokenizer: Any) -> Any:
    """A sequence classifier: the base folder's, or the base with the run's classes and adapter."""
    from transformers import AutoModelForSequenceClassification

    from backend.shrink import from_pretrained

    if adapter is None:
        return from_pretrained(AutoModelForSequenceClassification, base, trust_remote_code=code, dtype="float32")
    from peft import PeftModel

    if not (adapter / CLASSES_FILE).is_file():
        raise ValueError(f"{adapter} has no {CLASSES_FILE} (it predates class lists); train the run again")
    classes = json.loads((adapter / CLASSES_FILE).read_text())  # the base folder's head has other classes
    model = from_pretrained(
        AutoModelForSequenceClassification,
        base,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
        ignore_mismatched_sizes=True,
        trust_remote_code=code,
        dtype="float32",  # a bf16 hub base would not match the fp32 source (transformers 5 loads dtype=auto)
    )
    if model.config.pad_token_id is None:  # as training set it: batches of several rows need it
        model.config.pad_token_id = tokenizer.pad_token_id
    return PeftModel.from_pretrained(model, adapter)


def chat_input(tokenizer: Any) -> dict[str, Any]:
    return dict(
        tokenizer.apply_chat_template(CHECK_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    )


def text_input(tokenizer: Any, texts: list[str], pairs: list[str | None] | None, max_length: int) -> dict[str, Any]:
    """input_ids and attention_mask only: what the ONNX graph takes (single texts need no token types)."""
    second = [p or "" for p in pairs] if pairs is not None and any(pairs) else None
    enc = tokenizer(texts, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def prompt_ids(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    return [chat_input_ids(tokenizer, [{"role": "user", "content": p}]) for p in prompts]


def chat_input_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    return list(enc["input_ids"])


def stop_ids(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    return ids


def eval_batches(source: Source, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[int]]]:
    """Validation rows as (inputs, class ids) batches for the source's kind; rows of unknown classes are left out."""
    import torch

    index = {name: i for i, name in enumerate(source.labels)}
    rows = [r for r in rows if str(r.get("label")) in index]
    batches = []
    for start in range(0, len(rows), EVAL_BATCH):
        chunk = rows[start : start + EVAL_BATCH]
        ids = [index[str(r["label"])] for r in chunk]
        if source.kind == "text-classifier":
            pairs = [r.get("text_pair") for r in chunk]
            inputs = text_input(source.tokenizer, [r["text"] for r in chunk], pairs, source.max_length)
        else:
            from backend.tasks.image_data import ImageRows, eval_transforms

            spec = source.spec
            data = ImageRows(chunk, {n: i for i, n in enumerate(spec["classes"])}, eval_transforms(spec))
            inputs = {"pixel_values": torch.stack([data[i]["pixel_values"] for i in range(len(data))])}
        batches.append((inputs, ids))
    return batches
