"""Statistics of a dataset: the summary stored at import, and on demand the token-length histogram.

Token lengths use the chosen model's own tokenizer (its chat template for conversations), read
from the materialized models folder; when the model is not there yet, lengths are estimated at
4 characters per token and the result says so.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from backend.data.preference import preference_stats

log = logging.getLogger(__name__)
SAMPLE_ROWS = 2000  # tokenizing more rows changes the histogram little and costs seconds
CHARS_PER_TOKEN = 4
BINS = 20


def import_stats(task: str, splits: dict[str, list[dict[str, Any]]], duplicates: int, dropped: int) -> dict[str, Any]:
    """What the Datasets tab and `datasets show` report without reading the Parquet files again."""
    rows = [r for part in splits.values() for r in part]
    stats: dict[str, Any] = {"duplicate_rows": duplicates, "dropped_duplicates": dropped}
    if task == "sft" and rows and "messages" in rows[0]:
        prompt = [sum(len(m["content"]) for m in r["messages"] if m["role"] != "assistant") for r in rows]
        answer = [sum(len(m["content"]) for m in r["messages"] if m["role"] == "assistant") for r in rows]
        stats |= {
            "mean_prompt_chars": round(sum(prompt) / len(rows), 1),
            "mean_answer_chars": round(sum(answer) / len(rows), 1),
            "max_chars": max(p + a for p, a in zip(prompt, answer, strict=True)),
            "multi_turn_rows": sum(sum(m["role"] == "user" for m in r["messages"]) > 1 for r in rows),
            "system_rows": sum(r["messages"][0]["role"] == "system" for r in rows),
            "tool_rows": sum(bool(r.get("tools")) or any(m["role"] == "tool" for m in r["messages"]) for r in rows),
        }
    elif task in ("preference", "kto", "prompts"):
        stats |= preference_stats(task, rows)
    elif task == "sft":
        lengths = [len(r["text"]) for r in rows]
        stats |= {"mean_chars": round(sum(lengths) / len(rows), 1), "max_chars": max(lengths)}
    else:
        stats["labels"] = sorted({r["label"] for r in rows})
        stats["label_counts"] = {
            name: dict(sorted(Counter(r["label"] for r in part).items())) for name, part in splits.items()
        }
        if task == "text-classification":
            lengths = [len(r["text"]) + len(r.get("text_pair") or "") for r in rows]
            stats |= {"mean_chars": round(sum(lengths) / len(rows), 1), "max_chars": max(lengths)}
        else:
            stats |= _image_stats(rows)
    return stats


def _image_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import io

    from PIL import Image

    sizes, formats = [], Counter()
    for r in rows[:SAMPLE_ROWS]:
        with Image.open(io.BytesIO(r["image"])) as im:
            sizes.append(im.size)
            formats[im.format or "?"] += 1
    return {
        "image_formats": dict(formats),
        "min_size": [min(w for w, _ in sizes), min(h for _, h in sizes)],
        "max_size": [max(w for w, _ in sizes), max(h for _, h in sizes)],
        "total_image_bytes": sum(len(r["image"]) for r in rows),
    }


def label_distribution(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of (label, split, rows) for a bar chart; [] for datasets without labels."""
    return [
        {"label": label, "split": split, "rows": n}
        for split, counts in (stats.get("label_counts") or {}).items()
        for label, n in counts.items()
    ]


def token_lengths(
    rows: list[dict[str, Any]], model: str, models_dir: Path, cutoff: int, sample: int = SAMPLE_ROWS, seed: int = 0
) -> dict[str, Any]:
    """Token counts of (a sample of) rows under `model`'s tokenizer, a histogram and the share over `cutoff`."""
    if len(rows) > sample:
        rows = random.Random(seed).sample(rows, sample)
    tokenizer, note = _tokenizer(model, models_dir)
    lengths = [_length(r, tokenizer) for r in rows]
    over = sum(n > cutoff for n in lengths)
    return {
        "model": model,
        "exact": tokenizer is not None,
        "note": note,
        "rows_measured": len(lengths),
        "cutoff": cutoff,
        "over_cutoff": over,
        "share_over_cutoff": round(over / len(lengths), 4) if lengths else 0.0,
        "mean": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        "max": max(lengths, default=0),
        "histogram": histogram(lengths),
    }


def histogram(values: list[int], bins: int = BINS) -> list[dict[str, Any]]:
    """[{"tokens": "12-23", "start": 12, "rows": n}, ...]: equal-width bins from the shortest to the longest."""
    if not values:
        return []
    low, top = min(values), max(values) + 1
    width = max(1, -(-(top - low) // bins))
    counts = Counter((v - low) // width for v in values)
    return [
        {"tokens": _bin(low + i * width, width), "start": low + i * width, "rows": counts.get(i, 0)}
        for i in range(-(-(top - low) // width))
    ]


def _bin(start: int, width: int) -> str:
    return str(start) if width == 1 else f"{start}-{start + width - 1}"


def _tokenizer(model: str, models_dir: Path) -> tuple[Any, str]:
    """(tokenizer or None, why it is None): never converts a model just to count tokens."""
    from backend.models.catalog import BUNDLED, is_materialized, resolve_model

    estimate = "lengths estimated at 4 characters per token"
    bundled = BUNDLED.get(model)
    if bundled is not None and getattr(bundled, "arch", ""):
        return None, f"{model} is an image model; it has no tokenizer"
    if bundled is not None and bundled.gguf_file and not is_materialized(model, models_dir):
        return None, f"{model} is not converted yet (the first run does it); {estimate}"
    try:
        folder = resolve_model(model, models_dir)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder), ""
    except (OSError, ValueError) as e:
        log.warning("tokenizer of %s failed to load: %s", model, e)
        return None, f"no tokenizer could be loaded for '{model}'; {estimate}"


def _length(row: dict[str, Any], tokenizer: Any) -> int:
    if "messages" in row:
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return len(tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=False))
        text = "\n".join(m["content"] for m in row["messages"])
    else:
        text, pair = row.get("text", ""), row.get("text_pair") or None
        if tokenizer is not None:
            return len(tokenizer(text, pair)["input_ids"])
        text += " " + (pair or "")
    if tokenizer is None:
        return -(-len(text) // CHARS_PER_TOKEN)
    return len(tokenizer(text)["input_ids"])
