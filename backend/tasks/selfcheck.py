"""Did a chat run pick up its data? Greedy answers to a sample of its own training prompts, against the targets.

A run that ends at a low loss can still answer with the base model's words (too few steps, too low a
learning rate). After training the worker asks the model a few of the prompts it trained on and scores
each answer against its target with ROUGE-L (Chinese segmented into words); an answer scoring at least
MATCH counts as matched. The share of matched answers goes into the run's metrics, and the Runs page
says plainly when it is below LEARNED.

    rows = sample(train_rows, seed=42)                      # up to 8 training conversations
    train_check(answers, targets)                           # their greedy answers (causal_lm.generate_answers)
    # {"train_check_matched": 0.25, "train_check_n": 8, "train_check_rouge_l": 31.0}
    learned(metrics)   # False: answers do not match the training targets yet
"""

from __future__ import annotations

import random
from typing import Any

SAMPLES = 8  # training prompts asked; cheap: one batch of greedy answers
MAX_NEW_TOKENS = 96  # short chat targets fit; a longer one scores lower (ROUGE-L recall)
MATCH = 50.0  # ROUGE-L (0-100) at which an answer counts as the target's
LEARNED = 0.5  # share of matched answers below which the run did not pick up its data


def sample(rows: list[dict[str, Any]], seed: int = 42) -> list[dict[str, Any]]:
    """Up to SAMPLES of the training conversations, the same ones for the same seed."""
    chats = [r for r in rows if r.get("messages")]
    return random.Random(seed).sample(chats, min(SAMPLES, len(chats)))


def train_check(answers: list[str], targets: list[str]) -> dict[str, Any]:
    """Greedy answers to sampled training prompts scored against their assistant targets (ROUGE-L)."""
    from backend.metrics import rouge_l

    if not answers:
        return {}
    scores = [rouge_l([a], [t]) if a.strip() else 0.0 for a, t in zip(answers, targets, strict=True)]
    return {
        "train_check_matched": round(sum(s >= MATCH for s in scores) / len(scores), 3),
        "train_check_n": len(scores),
        "train_check_rouge_l": round(sum(scores) / len(scores), 2),
    }


def learned(metrics: dict[str, Any]) -> bool | None:
    """Whether a finished run's answers match its training targets; None when it was not checked."""
    matched = (metrics or {}).get("train_check_matched")
    return None if matched is None else matched >= LEARNED
