"""GRPO reward functions without code: built-in checks of an answer, combined with weights.

Public API:
    parse_specs(text) -> list[Spec]          # "NAME[:ARGUMENT][@WEIGHT]" per line; ValueError on a bad one
    reward_functions(specs, ...) -> list     # TRL reward callables (prompts, completions, answer, **kw) -> floats
    NAMES                                    # the built-in names, for --help and the Train tab
"""

from backend.rewards.builtin import NAMES, reward_functions
from backend.rewards.specs import Spec, parse_specs

__all__ = ["NAMES", "Spec", "parse_specs", "reward_functions"]
