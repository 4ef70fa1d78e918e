"""The built-in reward functions, as TRL's GRPOTrainer calls them: f(prompts, completions, answer, **kw) -> scores.

An answer is the text inside <answer>...</answer> when the completion has one, else the whole
completion. Scores are 0..1 (length, contains: the share of phrases found, ignoring case); each function's
`__name__` is the name its curve gets (rewards/NAME/mean).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.rewards.specs import ARGUMENTS, Spec, length_range, unique_labels

NAMES = tuple(ARGUMENTS)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


def reward_functions(
    specs: list[Spec], scorer: Callable[[str], Callable[[list[str], list[str]], list[float]]] | None = None
) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """(functions, weights) for TRL. `scorer(folder)` loads a reward run's model as f(prompts, answers); the
    run id a person gives becomes that folder when the run is queued (backend/runs/start.py)."""
    functions = []
    for spec, label in zip(specs, unique_labels(specs), strict=True):
        if spec.name == "reward_model":
            if scorer is None or spec.argument.strip().isdigit():
                raise ValueError("setting 'reward': reward_model needs the workspace's runs; start it as a run")
            score = scorer(spec.argument.strip())
            func = _named(lambda prompts, completions, _s=score, **kw: _s(_texts(prompts), _texts(completions)), label)
        elif spec.name == "python":
            func = _named(_python_reward(Path(spec.argument)), label)
        else:
            check = _check(spec)
            func = _named(lambda prompts, completions, _c=check, **kw: _each(_c, completions, kw), label)
        functions.append(func)
    return functions, [s.weight for s in specs]


def _named(func: Callable[..., list[float]], name: str) -> Callable[..., list[float]]:
    func.__name__ = name
    return func


def _texts(items: list[Any]) -> list[str]:
    """Completions (and prompts) as text: TRL passes message lists for chat data."""
    return [x[-1]["content"] if isinstance(x, list) else str(x) for x in items]


def _each(check: Callable[[str, str], float], completions: list[Any], kw: dict[str, Any]) -> list[float]:
    answers = kw.get("answer") or [""] * len(completions)
    return [check(text, str(ref or "")) for text, ref in zip(_texts(completions), answers, strict=True)]


def answer_of(text: str) -> str:
    found = ANSWER.search(text)
    return (found.group(1) if found else text).strip()


def normalize(text: str) -> str:
    """Case, accents, punctuation and spacing removed: 'The  Answer!' == 'the answer'."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in text if not unicodedata.category(c).startswith("P"))
    return " ".join(text.split())


def _number(text: str) -> float | None:
    found = NUMBER.findall(text)
    try:
        return float(found[-1].replace(",", "")) if found else None
    except ValueError:
        return None


def _check(spec: Spec) -> Callable[[str, str], float]:
    arg = spec.argument
    if spec.name == "exact":
        return lambda text, ref: float(bool(ref) and answer_of(text) == ref.strip())
    if spec.name == "normalized":
        return lambda text, ref: float(bool(ref) and normalize(answer_of(text)) == normalize(ref))
    if spec.name == "numeric":

        def numeric(text: str, ref: str) -> float:
            got, want = _number(answer_of(text)), _number(ref)
            return float(got is not None and want is not None and abs(got - want) <= 1e-6 * max(1.0, abs(want)))

        return numeric
    if spec.name == "regex":
        pattern = re.compile(arg, re.S)
        return lambda text, ref: float(pattern.search(text) is not None)
    if spec.name == "format":
        # 1 when the whole reply is the tagged answer, 0.5 when a tagged answer sits among other text: a
        # model that never answers in the format at first still gets a signal towards it.
        tag = re.escape(arg.strip() or "answer")
        whole = re.compile(rf"^\s*(<think>.*?</think>\s*)?<{tag}>.+?</{tag}>\s*$", re.S)
        inside = re.compile(rf"<{tag}>.+?</{tag}>", re.S)
        return lambda text, ref: 1.0 if whole.match(text) else 0.5 if inside.search(text) else 0.0
    if spec.name == "length":
        low, high = length_range(arg)
        return lambda text, ref: float(low <= len(text.strip()) <= high)
    if spec.name == "json":
        return _json_check(arg.strip())
    # contains and not_contains both ignore case (casefold: 'Sorry' matches 'sorry' and 'SORRY').
    phrases = [p.casefold() for p in arg.split("|") if p]
    if spec.name == "contains":
        return lambda text, ref: sum(p in text.casefold() for p in phrases) / len(phrases)
    return lambda text, ref: float(not any(p in text.casefold() for p in phrases))  # not_contains


def _json_check(schema_file: str) -> Callable[[str, str], float]:
    schema = json.loads(Path(schema_file).read_text(encoding="utf-8")) if schema_file else None

    def valid(text: str, ref: str) -> float:
        try:
            value = json.loads(answer_of(text))
        except ValueError:
            return 0.0
        return float(schema is None or _matches(value, schema))

    return valid


def _matches(value: Any, schema: dict[str, Any]) -> bool:
    """A small JSON-schema subset: type, required, properties (nested), items, enum."""
    types = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int, "boolean": bool}
    kind = schema.get("type")
    if kind in types and (not isinstance(value, types[kind]) or (kind != "boolean" and isinstance(value, bool))):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, dict):
        if any(k not in value for k in schema.get("required", [])):
            return False
        props = schema.get("properties", {})
        return all(_matches(value[k], s) for k, s in props.items() if k in value)
    if isinstance(value, list) and "items" in schema:
        return all(_matches(v, schema["items"]) for v in value)
    return True


def _python_reward(path: Path) -> Callable[..., list[float]]:
    """Code from `path` (only with trust_remote_code): its reward(prompt, completion, answer) -> float."""
    import importlib.util

    if not path.is_file():
        raise ValueError(f"setting 'reward': python:{path} is not a file")
    spec = importlib.util.spec_from_file_location(f"tuneboard_reward_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "reward", None)):
        raise ValueError(f"setting 'reward': {path} defines no reward(prompt, completion, answer) function")

    def call(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
        answers = kw.get("answer") or [""] * len(completions)
        return [
            float(module.reward(p, c, a)) for p, c, a in zip(_texts(prompts), _texts(completions), answers, strict=True)
        ]

    return call
