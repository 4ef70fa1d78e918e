"""A reward SPEC is NAME[:ARGUMENT][@WEIGHT]: `regex:<answer>.*?</answer>`, `exact@2`, `length:20-200@0.5`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# name -> (needs an argument, what the argument is)
ARGUMENTS = {
    "exact": (False, ""),
    "numeric": (False, ""),
    "normalized": (False, ""),
    "regex": (True, "a regular expression the answer must contain"),
    "format": (False, "optional: a tag name (default answer: <answer>...</answer>; 0.5 when other text surrounds it)"),
    "length": (True, "a character range such as 20-200"),
    "json": (False, "optional: a JSON schema file the answer must satisfy"),
    "contains": (True, "phrases separated by | (case ignored)"),
    "not_contains": (True, "phrases separated by | (case ignored)"),
    "reward_model": (True, "the id of a completed reward run"),
    "python": (True, "a .py file defining reward(prompt, completion, answer) -> float"),
}
_WEIGHT = re.compile(r"^(?P<body>.*)@(?P<weight>[+-]?(\d+(\.\d*)?|\.\d+))$", re.S)
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


@dataclass(frozen=True)
class Spec:
    name: str
    argument: str = ""
    weight: float = 1.0


def parse_specs(text: str) -> list[Spec]:
    """One Spec per non-empty line of `text`; a ValueError names the spec and says what to write."""
    specs = []
    for raw in (line.strip() for line in text.splitlines()):
        if raw:
            specs.append(_parse(raw))
    return specs


def _parse(raw: str) -> Spec:
    weight = 1.0
    body = raw
    match = _WEIGHT.match(raw)
    if match:
        body, weight = match["body"], float(match["weight"])
    name, _, argument = body.partition(":")
    name = name.strip().replace("-", "_")
    if name == "normalised":
        name = "normalized"
    if name not in ARGUMENTS:
        raise ValueError(
            f"setting 'reward': '{raw}' names no reward function; use one of {', '.join(ARGUMENTS)} "
            "as NAME[:ARGUMENT][@WEIGHT]"
        )
    needs, what = ARGUMENTS[name]
    if needs and not argument.strip():
        raise ValueError(f"setting 'reward': '{raw}' needs an argument ({what}), e.g. {name}:...")
    if name == "length" and not _RANGE.match(argument):
        raise ValueError(f"setting 'reward': '{raw}' needs a character range, e.g. length:20-200")
    if name == "regex":
        try:
            re.compile(argument)
        except re.error as e:
            raise ValueError(f"setting 'reward': '{raw}' is not a valid regular expression ({e})") from None
    if name == "reward_model" and not (argument.strip().isdigit() or Path(argument.strip()).is_dir()):
        raise ValueError(f"setting 'reward': '{raw}' needs the id of a completed reward run, e.g. reward_model:3")
    return Spec(name, argument, weight)


def length_range(argument: str) -> tuple[int, int]:
    low, high = map(int, _RANGE.match(argument).groups())
    return low, high


def unique_labels(specs: list[Spec]) -> list[str]:
    """Curve names: the spec's name, numbered from the second one of a name on (contains, contains_2)."""
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        seen[s.name] = seen.get(s.name, 0) + 1
        out.append(s.name if seen[s.name] == 1 else f"{s.name}_{seen[s.name]}")
    return out
