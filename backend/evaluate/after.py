"""Eval after training: a run that names `eval_suites` gets an evaluation of its base and itself when it
completes (queued by the run's worker), and the scores come back into the run's metrics.

    queue_after_run(database, workspace, run_id)        # the worker, as the run completes
    record_on_run(database, evaluation_id)              # the evaluation's worker, as it completes
    # run.metrics: "evals": [{"suite", "base", "run", "difference", "ci95", "regression"}],
    #              "eval_identity": 95.0, "eval_identity_diff": 90.0, "eval_identity_base": 5.0,
    #              "eval_identity_ci95": "+75.0 – +100.0", "eval_regressions": "mc-en"
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend.workspace import Workspace
from db import Database, Evaluation, Run

log = logging.getLogger(__name__)


def queue_after_run(database: Database, workspace: Workspace, run_id: int) -> int:
    from backend.config import RunConfig
    from backend.evaluate.jobs import create_evaluation

    with database.session() as s:
        run = s.get(Run, run_id)
        cfg = RunConfig.from_dict(run.config)
    suites = [x.strip() for x in cfg.eval_suites.split(",") if x.strip()]
    base = cfg.model if Path(cfg.model).is_dir() else f"base:{cfg.model}"
    e = create_evaluation(database, workspace, [base, f"run:{run_id}"], suites, run_id=run_id)
    log.info("run %s: evaluation %s queued on %s", run_id, e.id, ", ".join(suites))
    return e.id


def record_on_run(database: Database, evaluation_id: int) -> None:
    """Write base vs run per suite (difference, paired 95% CI, regression) into the run's metrics."""
    from backend.evaluate.compare import differences
    from backend.evaluate.jobs import get_evaluation, samples

    e: Evaluation = get_evaluation(database, evaluation_id)
    if e.run_id is None:
        return
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
    with database.session() as s:
        run = s.get(Run, e.run_id)
        if run is not None:
            run.metrics = {**(run.metrics or {}), **flat, "evals": evals}
