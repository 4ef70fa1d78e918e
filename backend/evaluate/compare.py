"""Models side by side on a suite: each model's difference from the first (the base), with a paired 95% CI.

    differences(results, samples)
    # [{"suite": "identity", "model": "run:3", "baseline": "base:...", "difference": 85.0,
    #   "ci95": [70.0, 95.0], "regression": False}]
A regression is a drop whose whole interval lies below zero.
"""

from __future__ import annotations

from typing import Any

from backend.evaluate.scoring import paired_ci95


def differences(results: list[dict[str, Any]], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, str], dict[int, float]] = {}
    for s in samples:
        by_key.setdefault((s["model"], s["suite"]), {})[s["index"]] = s["score"]
    models = list(dict.fromkeys(r["model"] for r in results if "judge" not in r))  # a judge's verdicts: no baseline
    out = []
    for suite in dict.fromkeys(r["suite"] for r in results):
        present = [m for m in models if (m, suite) in by_key]
        if len(present) < 2:
            continue
        base = by_key[(present[0], suite)]
        for model in present[1:]:
            mine = by_key[(model, suite)]
            shared = sorted(set(base) & set(mine))
            if not shared:
                continue
            paired = paired_ci95([mine[i] for i in shared], [base[i] for i in shared])
            out.append(
                {
                    "suite": suite,
                    "model": model,
                    "baseline": present[0],
                    **paired,
                    "regression": paired["ci95"][1] < 0,
                }
            )
    return out


def side_by_side(samples: list[dict[str, Any]], disagreements_only: bool = False) -> list[dict[str, Any]]:
    """One row per (suite, sample): prompt, reference, then each model's answer and score. With
    `disagreements_only`, the rows where the models' scores differ. A judge's rows add its verdict and
    reason beside the answers it graded."""
    models = list(dict.fromkeys(s["model"] for s in samples if not (s.get("detail") or {}).get("judge")))
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for s in samples:
        row = rows.setdefault(
            (s["suite"], s["index"]),
            {"suite": s["suite"], "index": s["index"], "prompt": s["prompt"], "reference": s["reference"]},
        )
        if (s.get("detail") or {}).get("judge"):
            row[f"{s['model']} verdict"], row[f"{s['model']} reason"] = s["detail"]["verdict"], s["answer"]
        else:
            row[f"{s['model']} answer"], row[f"{s['model']} score"] = s["answer"], s["score"]
    out = list(rows.values())
    if disagreements_only:
        out = [r for r in out if len({r.get(f"{m} score") for m in models}) > 1]
    return out
