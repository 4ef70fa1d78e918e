"""A search space: which RunConfig settings a hyperparameter search varies, and over what.

A space file (YAML or JSON) maps setting names to a range or a list of choices:

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    lora_rank: {type: categorical, choices: [4, 8, 16]}
    num_epochs: {type: int, low: 1, high: 3}

`num_epochs` is accepted for RunConfig's `epochs`. Ranges become Optuna distributions; a grid search
needs finite sets (choices, an int range, or a float range with `step`). Everything is checked before a
study is created, so a bad space never starts a trial: the message names the setting and what to change.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from backend.config import RunConfig

ALIASES = {"num_epochs": "epochs", "lr": "learning_rate"}
FIXED = ("task", "model", "dataset", "method", "devices", "nproc", "precision", "trust_remote_code")
TUNABLE = tuple(f.name for f in fields(RunConfig) if f.name not in FIXED)
KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}, "categorical": {"choices"}}
MAX_GRID = 1000  # grid points a study may hold


def load_space(path: str | Path) -> dict[str, Any]:
    """The raw space in a YAML or JSON file (checked by parse_space)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"space file {path} does not exist; write one mapping settings to ranges (see --help)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"space file {path} is not valid YAML or JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ValueError(
            f"space file {path} must map setting names to ranges, "
            "e.g. 'lora_rank: {type: categorical, choices: [4, 8]}'"
        )
    return raw


def parse_space(raw: Any) -> dict[str, BaseDistribution]:
    """Optuna distributions for a raw space, keyed by RunConfig field name; ValueError names what is wrong."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("the search space is empty; give at least one setting to search, e.g. learning_rate")
    space: dict[str, BaseDistribution] = {}
    for given, spec in raw.items():
        name = ALIASES.get(str(given), str(given))
        if name not in TUNABLE:
            hint = (
                "it is fixed for the whole study (set it like a train option)"
                if name in FIXED
                else f"searchable: {', '.join(sorted(TUNABLE))}"
            )
            raise ValueError(f"search space: unknown parameter '{given}'; {hint}")
        if name in space:
            raise ValueError(f"search space: '{given}' is given twice (num_epochs is epochs)")
        space[name] = _distribution(str(given), name, spec)
    return space


def _distribution(given: str, name: str, spec: Any) -> BaseDistribution:
    where = f"search space: '{given}'"
    if not isinstance(spec, dict) or spec.get("type") not in KEYS:
        raise ValueError(
            f"{where} needs a mapping with type float, int or categorical, "
            "e.g. {type: float, low: 1.0e-5, high: 1.0e-3, log: true}"
        )
    kind = spec["type"]
    extra = sorted(set(spec) - KEYS[kind] - {"type"})
    if extra:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(extra)} for type {kind}; use {', '.join(sorted(KEYS[kind]))}"
        )
    default = {f.name: f.default for f in fields(RunConfig)}[name]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: 'choices' is empty; list at least one value, e.g. choices: [8, 16]")
        if any(isinstance(c, (dict, list)) or c is None for c in choices):
            raise ValueError(f"{where}: choices must be plain values (numbers, words or true/false)")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: a choice is listed twice")
        for choice in choices:
            _check_value(given, name, choice)
        return CategoricalDistribution(choices)
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        raise ValueError(f"{where}: 'low' and 'high' must both be numbers")
    if low > high:
        raise ValueError(f"{where}: low ({low}) is above high ({high}); swap them")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise ValueError(f"{where}: a log range must start above 0 (low is {low})")
    if log and step is not None:
        raise ValueError(f"{where}: give either log: true or a step, not both")
    if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0):
        raise ValueError(f"{where}: 'step' must be a number above 0")
    if kind == "int" or isinstance(default, int) and not isinstance(default, bool):
        if kind == "float":
            raise ValueError(f"{where}: {name} is a whole number; use type: int")
        if not all(float(v).is_integer() for v in (low, high, step or 1)):
            raise ValueError(f"{where}: an int range needs whole-number low, high and step")
        for value in (low, high):
            _check_value(given, name, int(value))
        return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
    if not isinstance(default, float):
        raise ValueError(f"{where}: {name} takes {type(default).__name__} values; use type: categorical with choices")
    for value in (low, high):
        _check_value(given, name, float(value))
    return FloatDistribution(float(low), float(high), log=log, step=float(step) if step is not None else None)


def _check_value(given: str, name: str, value: Any) -> None:
    """Refuse a bound or choice RunConfig itself would refuse (warmup_ratio 1.5, optimizer 'adamx')."""
    try:
        RunConfig.from_dict({name: value})
    except ValueError as e:
        raise ValueError(f"search space: '{given}' value {value!r} is refused: {e}") from None


def grid(space: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each setting, for a grid search; ValueError when a range has no finite set of points."""
    points: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            points[name] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            points[name] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = int(round((dist.high - dist.low) / dist.step))
            points[name] = [round(dist.low + i * dist.step, 12) for i in range(n + 1)]
        else:
            raise ValueError(
                f"grid search: '{name}' is a continuous range; "
                "give it choices or a step, or use the tpe or random sampler"
            )
    size = math.prod(len(v) for v in points.values())
    if size > MAX_GRID:
        raise ValueError(f"grid search: the grid has {size} points (at most {MAX_GRID}); give fewer choices")
    return points
