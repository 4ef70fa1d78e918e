"""Evaluation metrics: classification scores (scikit-learn) and BLEU-4 / ROUGE-L for generated text.

    classification_metrics([0, 1, 1], [0, 1, 0], ["cat", "dog"])  # accuracy, macro P/R/F1, per class, confusion
    bleu4(["我爱北京天安门"], ["我爱北京天安门"])                   # 100.0
    rouge_l(["the cat sat"], ["the cat sat down"])                 # 0-100

Chinese (and other CJK) text is segmented into words with jieba before BLEU/ROUGE: the usual
whitespace tokenizers see a whole Chinese sentence as one token, and rouge-score's default
tokenizer drops every non-Latin character, scoring any Chinese answer 0.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    `y_true`/`y_pred` are class ids indexing `labels`. Macro averages run over the classes that
    occur in `y_true` or `y_pred` (a class absent from both says nothing about the model);
    the confusion matrix has one row (true) and one column (predicted) per label, in order.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not len(y_true):
        raise ValueError("no examples to score")
    ids = list(range(len(labels)))
    seen = sorted({int(y) for y in y_true} | {int(y) for y in y_pred})
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=seen, average="macro", zero_division=0)
    pc, rc, fc, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=ids)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(p),
        "recall_macro": float(r),
        "f1_macro": float(f),
        "per_class": {
            name: {
                "precision": round(float(pc[i]), 4),
                "recall": round(float(rc[i]), 4),
                "f1": round(float(fc[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion_matrix": {"labels": list(labels), "matrix": matrix.tolist()},
    }


def tokenize(text: str) -> list[str]:
    """Words for BLEU/ROUGE: jieba segments text with CJK characters; other text splits into words and punctuation."""
    if _CJK.search(text):
        return [t for t in _jieba().lcut(text) if t.strip()]
    return _WORD.findall(text)


def bleu4(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (0-100) with one reference per prediction; case-sensitive, as BLEU usually is.

    Smoothing (Chen & Cherry method 1) keeps a sample of short answers with no 4-gram match
    from scoring exactly 0.
    """
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    _check_pairs(predictions, references)
    hyps = [tokenize(p) for p in predictions]
    refs = [[tokenize(r)] for r in references]
    if not any(hyps):
        return 0.0
    return 100 * float(corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1))


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (0-100) over the pairs, on lower-cased words (as rouge-score does)."""
    from rouge_score.rouge_scorer import RougeScorer

    _check_pairs(predictions, references)
    scorer = RougeScorer(["rougeL"], tokenizer=_LowerTokenizer())
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references, strict=True)]
    return 100 * sum(scores) / len(scores)


class _LowerTokenizer:
    """rouge-score's tokenizer interface (an object with `tokenize`), CJK-aware."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text.lower())


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary load on stderr otherwise
    return jieba
