"""Per-sample scores of generated answers (0 or 1, or 0-1 for BLEU-4 / ROUGE-L) and 95% bootstrap intervals.

score("exact", "The answer is Paris.", "paris")  # 0.0 (exact after normalisation: case, punctuation, articles)
score("contains", "The answer is Paris.", "paris")  # 1.0
score("numeric", "It is 1,024.", "1024")  # 1.0: the last number in the answer
ci95([1, 0, 1, 1])  # [lo, hi] in points (0-100), 1000 resamples
paired_ci95(run_scores, base_scores)  # the difference run - base, resampling the same samples
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Sequence

RESAMPLES = 1000
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def normalise(text: str) -> str:
    """Lower case, no punctuation (ASCII or CJK), no English articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") or c in string.punctuation else c for c in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def number(text: str) -> float | None:
    """The last number written in `text` (thousands commas allowed), or None."""
    found = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def score(metric: str, answer: str, reference: str) -> float:
    """One answer's score under `metric` (see backend.evaluate.suites.METRICS)."""
    if metric == "exact":
        return float(normalise(answer) == normalise(reference))
    if metric == "contains":
        return float(normalise(reference) in normalise(answer))
    if metric == "numeric":
        got, want = number(answer), number(reference)
        return float(got is not None and want is not None and abs(got - want) <= 1e-6 * max(1.0, abs(want)))
    if metric.startswith("regex:"):
        return float(re.search(metric.removeprefix("regex:"), answer) is not None)
    if metric == "json":
        try:
            json.loads(_FENCE.sub("", answer.strip()))
        except ValueError:
            return 0.0
        return 1.0
    if metric in ("bleu4", "rouge_l"):
        from backend.metrics import bleu4, rouge_l

        if not answer.strip():
            return 0.0
        return (bleu4 if metric == "bleu4" else rouge_l)([answer], [reference]) / 100
    raise ValueError(f"setting 'metric': {metric!r} is not a known metric")


def mean_points(scores: Sequence[float]) -> float:
    return round(100 * sum(scores) / len(scores), 2) if scores else 0.0


def ci95(scores: Sequence[float], seed: int = 0) -> list[float]:
    """The 95% bootstrap interval of the mean score, in points."""
    import numpy as np

    if not scores:
        return [0.0, 0.0]
    values = np.asarray(scores, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(values), (RESAMPLES, len(values)))
    means = values[picks].mean(axis=1) * 100
    return [round(float(np.percentile(means, 2.5)), 2), round(float(np.percentile(means, 97.5)), 2)]


def paired_ci95(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, float | list[float]]:
    """Mean of a - b in points and its 95% bootstrap interval over the same samples (a and b aligned)."""
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError("paired scores need the same samples on both sides")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(diff), (RESAMPLES, len(diff)))
    means = diff[picks].mean(axis=1) * 100
    return {
        "difference": round(float(diff.mean() * 100), 2),
        "ci95": [round(float(np.percentile(means, 2.5)), 2), round(float(np.percentile(means, 97.5)), 2)],
    }
