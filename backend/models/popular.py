"""A curated list of hub models per task for the Models tab: a starting point, any other hub id works too.

Figures are from each model's card and config.json (parameters rounded; context = max_position_embeddings).
`gated`: the hub asks you to accept a licence on the model page first, then HF_TOKEN must be set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Popular:
    id: str
    task: str
    params: str
    licence: str
    gated: bool
    context: int
    note: str = ""


POPULAR: list[Popular] = [
    Popular("HuggingFaceTB/SmolLM2-135M-Instruct", "sft", "135M", "apache-2.0", False, 8192, "the bundled model"),
    Popular("HuggingFaceTB/SmolLM2-360M-Instruct", "sft", "360M", "apache-2.0", False, 8192, "CPU-friendly"),
    Popular("Qwen/Qwen2.5-0.5B-Instruct", "sft", "0.5B", "apache-2.0", False, 32768, "Chinese and English"),
    Popular("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "sft", "1.1B", "apache-2.0", False, 2048),
    Popular("meta-llama/Llama-3.2-1B-Instruct", "sft", "1.2B", "llama3.2", True, 131072),
    Popular("Qwen/Qwen2.5-1.5B-Instruct", "sft", "1.5B", "apache-2.0", False, 32768, "Chinese and English"),
    Popular("google/gemma-2-2b-it", "sft", "2.6B", "gemma", True, 8192),
    Popular("microsoft/Phi-3.5-mini-instruct", "sft", "3.8B", "mit", False, 131072),
    Popular("mistralai/Mistral-7B-Instruct-v0.3", "sft", "7.2B", "apache-2.0", True, 32768, "GPU: LoRA/QLoRA"),
    Popular("Qwen/Qwen2.5-7B-Instruct", "sft", "7.6B", "apache-2.0", False, 32768, "GPU: LoRA/QLoRA"),
    Popular("meta-llama/Llama-3.1-8B-Instruct", "sft", "8.0B", "llama3.1", True, 131072, "GPU: LoRA/QLoRA"),
    Popular("google-bert/bert-base-chinese", "text-classification", "102M", "apache-2.0", False, 512, "Chinese"),
    Popular("hfl/chinese-roberta-wwm-ext", "text-classification", "102M", "apache-2.0", False, 512, "Chinese"),
    Popular("distilbert/distilbert-base-uncased", "text-classification", "66M", "apache-2.0", False, 512),
    Popular("google-bert/bert-base-uncased", "text-classification", "110M", "apache-2.0", False, 512),
    Popular("FacebookAI/xlm-roberta-base", "text-classification", "278M", "mit", False, 514, "100 languages"),
    # Image classifiers that transformers loads (AutoModelForImageClassification); context: none, images.
    Popular("google/mobilenet_v2_1.0_224", "image-classification", "3.5M", "other", False, 0, "224 px; the fastest"),
    Popular("microsoft/resnet-50", "image-classification", "25.6M", "apache-2.0", False, 0, "224 px CNN"),
    Popular("facebook/convnext-tiny-224", "image-classification", "28.6M", "apache-2.0", False, 0, "224 px CNN"),
    Popular("google/vit-base-patch16-224", "image-classification", "86.6M", "apache-2.0", False, 0, "224 px ViT"),
    Popular("microsoft/swin-tiny-patch4-window7-224", "image-classification", "28.3M", "apache-2.0", False, 0),
]


def popular(task: str | None = None) -> list[dict[str, Any]]:
    """The curated models (of `task`), as dicts."""
    return [asdict(p) for p in POPULAR if task in (None, p.task)]
