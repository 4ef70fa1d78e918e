"""Eval suites: a shipped name or a file, read and checked before anything is queued.

Two kinds, told apart by their fields:
- multiple choice: `question, A, B, C, D, answer` (answer a letter A-D), as MMLU / C-Eval / CMMLU ship
  them: CSV with that header (any case, extra columns such as `id` ignored), MMLU's headerless CSV (six
  columns in that order), or JSON Lines / a JSON list. Scored by log-likelihood (lm-evaluation-harness).
- generation: `prompt` and `reference` (JSON Lines or a JSON list), scored by a METRIC on the greedy answer.

A bad file is refused with its path, row and field named; nothing is written.

    suite = load_suite("arithmetic")              # shipped: examples/evals/arithmetic.jsonl
    suite = load_suite("my.jsonl", metric="numeric")
    suite.kind, suite.metric, suite.rows
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Shipped offline suites: name -> (file, default metric).
SHIPPED: dict[str, tuple[str, str]] = {
    "identity": ("identity_heldout.json", "contains"),  # the identity example's prompts held out from training
    "arithmetic": ("evals/arithmetic.jsonl", "numeric"),
    "mc-en": ("evals/mc_en.jsonl", "acc"),
    "mc-zh": ("evals/mc_zh.jsonl", "acc"),
}
METRICS = ("exact", "numeric", "regex:PATTERN", "contains", "bleu4", "rouge_l", "json")
CHOICE_FIELDS = ("question", "A", "B", "C", "D", "answer")
LETTERS = "ABCD"


@dataclass
class Suite:
    name: str  # how results name it: the shipped name or the file's name
    kind: str  # "choice" or "generation"
    metric: str  # "acc" for multiple choice; a generation metric
    path: str
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "metric": self.metric, "path": self.path, "n": len(self.rows)}


def load_suite(source: str, metric: str | None = None) -> Suite:
    """A suite by shipped name or file path, checked row by row (ValueError naming file, row, field)."""
    if source in SHIPPED:
        file, default = SHIPPED[source]
        path, name = EXAMPLES / file, source
    else:
        path, name, default = Path(source).expanduser(), Path(source).name, "exact"
        if not path.is_file():
            shipped = ", ".join(SHIPPED)
            raise ValueError(f"suite '{source}': no such file and not a shipped suite ({shipped}); give a file path")
    rows = _read(path)
    if not rows:
        raise ValueError(f"suite file {path}: no rows; add at least one")
    if _is_choice(rows[0]):
        return Suite(name, "choice", "acc", str(path), [_choice_row(path, i, r) for i, r in enumerate(rows, 1)])
    if "prompt" not in rows[0]:
        raise ValueError(
            f"suite file {path}, row 1: no field 'prompt' (generation) and not question,A,B,C,D,answer "
            "(multiple choice); rename the columns"
        )
    chosen = check_metric(metric or default)
    return Suite(name, "generation", chosen, str(path), [_generation_row(path, i, r) for i, r in enumerate(rows, 1)])


def check_metric(metric: str) -> str:
    """The metric if it is one of METRICS (a regex must compile), else a ValueError saying which exist."""
    if metric.startswith("regex:"):
        try:
            re.compile(metric.removeprefix("regex:"))
        except re.error as e:
            raise ValueError(f"setting 'metric': {metric!r} is not a valid regular expression ({e})") from e
        return metric
    if metric not in METRICS:
        raise ValueError(f"setting 'metric': {metric!r} is not one of {', '.join(METRICS)}")
    return metric


def _read(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        return _read_csv(path, text)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"suite file {path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from e
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"suite file {path}, row {i}: not valid JSON ({e.msg}); fix that line") from e
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"suite file {path}, row {i}: not an object with named fields; write one object a row")
    return rows


def _read_csv(path: Path, text: str) -> list[dict[str, Any]]:
    lines = list(csv.reader(text.splitlines()))
    if not lines:
        return []
    header = {c.strip().lower(): i for i, c in enumerate(lines[0])}
    if {"question", "a", "b", "c", "d", "answer"} <= set(header):  # C-Eval, CMMLU, MMLU with a header
        cols = {f: header[f.lower()] for f in CHOICE_FIELDS}
        body = lines[1:]
    else:  # MMLU's own CSVs: no header, six columns
        cols = {f: i for i, f in enumerate(CHOICE_FIELDS)}
        body = lines
    rows = []
    for i, line in enumerate(body, 1):  # data rows, as the row numbers of every other refusal
        if len(line) < len(cols) or len(line) <= max(cols.values()):
            raise ValueError(
                f"suite file {path}, row {i}: {len(line)} columns; a multiple-choice CSV needs "
                "question,A,B,C,D,answer (a header row naming them, or those six columns in order)"
            )
        rows.append({f: line[c] for f, c in cols.items()})
    return rows


def _is_choice(row: dict[str, Any]) -> bool:
    keys = {k.lower() for k in row}
    return "question" in keys and "answer" in keys


def _choice_row(path: Path, i: int, row: dict[str, Any]) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in row.items()}
    out = {}
    for f in CHOICE_FIELDS:
        value = row.get(f, lowered.get(f.lower()))
        if value is None or str(value).strip() == "":
            raise ValueError(f"suite file {path}, row {i}: field '{f}' is missing or empty; fill it in")
        out[f] = str(value).strip()
    answer = out["answer"].upper()
    if answer.isdigit() and int(answer) < 4:
        answer = LETTERS[int(answer)]
    if answer not in LETTERS:
        raise ValueError(f"suite file {path}, row {i}: field 'answer' is {out['answer']!r}; write one of A, B, C, D")
    return {**out, "answer": answer}


def _generation_row(path: Path, i: int, row: dict[str, Any]) -> dict[str, Any]:
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"suite file {path}, row {i}: field 'prompt' is missing or empty; write the question there")
    reference = row.get("reference", row.get("expect"))
    if reference is None:
        raise ValueError(f"suite file {path}, row {i}: field 'reference' is missing; add the expected answer")
    return {"prompt": prompt, "reference": str(reference)}
