"""Eval after training: a run that names `eval_suites` gets an evaluation of its base and itself when it
completes (queued by the run's worker), and the scores come back into the run's metrics. Each hand-over is
one transaction, so nobody (a search waiting for a trial's suite score) sees a gap between the two:

    row = evaluation_after_run(database, workspace, run_id)  # the worker adds it as it marks the run completed
    scores = run_scores(database, evaluation_id)             # the evaluation's worker writes these into the
                                                             # run as it marks itself completed
    # run.metrics: "evals": [{"suite", "base", "run", "difference", "ci95", "regression"}],
    #              "eval_identity": 95.0, "eval_identity_diff": 90.0, "eval_identity_base": 5.0,
    #              "eval_identity_ci95": "+75.0 – +100.0", "eval_regressions": "mc-en"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.workspace import Workspace
from db import Database, Evaluation, Run


def evaluation_after_run(database: Database, workspace: Workspace, run_id: int) -> Evaluation:
    """The checked, unsaved evaluation of base vs run on the suites the run names (raises on a bad suite)."""
    from backend.config import RunConfig
    from backend.evaluate.jobs import build_evaluation

    with database.session() as s:
        run = s.get(Run, run_id)
        cfg = RunConfig.from_dict(run.config)
    suites = [x.strip() for x in cfg.eval_suites.split(",") if x.strip()]
    base = cfg.model if Path(cfg.model).is_dir() else f"base:{cfg.model}"
    return build_evaluation(database, workspace, [base, f"run:{run_id}"], suites, run_id=run_id, completing=True)


def run_scores(database: Database, evaluation_id: int) -> dict[str, Any] | None:
    """Base vs run per suite (difference, paired 95% CI, regression), as metrics of the run it evaluates."""
    from backend.evaluate.compare import differences
    from backend.evaluate.jobs import get_evaluation, samples

    e: Evaluation = get_evaluation(database, evaluation_id)
    if e.run_id is None:
        return None
    scores = {(r["model"], r["suite"]): r["score"] for r in e.results}
    evals, flat = [], {}
    for d in differences(e.results, samples(database, evaluation_id)):
        suite = d["suite"]
        row = {
            "suite": suite,
            "base": scores[(d["baseline"], suite)],
            "run": scores[(d["model"], suite)],
            "difference": d["difference"],
            "ci95": d["ci95"],
            "regression": d["regression"],
            "evaluation_id": evaluation_id,
        }
        evals.append(row)
        flat[f"eval_{suite}"], flat[f"eval_{suite}_diff"] = row["run"], row["difference"]
        # Compare lists a run's metrics side by side: the base's score and the difference's interval too
        flat[f"eval_{suite}_base"], flat[f"eval_{suite}_ci95"] = row["base"], "{:+.1f} – {:+.1f}".format(*d["ci95"])
    flat["eval_regressions"] = ", ".join(r["suite"] for r in evals if r["regression"])
    return {**flat, "evals": evals}
