"""One evaluation's process: `python -m backend.evaluate.worker ID --workspace DIR` (started by driver.py).

Each model is loaded once and scored on every suite; after each (model, suite) its samples and result
are written, with progress and ETA, so a process that vanishes (a reboot) is restarted by the driver
and goes on from the next pair. A cancel (the row leaves `running`) stops it at the next batch.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from sqlalchemy import delete, update

from backend.evaluate.jobs import suite_for
from backend.evaluate.scoring import ci95, mean_points
from backend.workspace import Workspace
from db import Database, EvalSample, Evaluation, Run
from db.models import utcnow

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The evaluation left `running` (cancelled) while this process scored it."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Score one queued evaluation.")
    p.add_argument("evaluation_id", type=int)
    p.add_argument("--workspace", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workspace = Workspace.resolve(args.workspace)
    database = Database.open(workspace.database_url, upgrade=False)
    try:
        evaluate(database, workspace, args.evaluation_id)
    except Cancelled:
        log.info("evaluation %s cancelled", args.evaluation_id)
    except Exception as e:
        log.exception("evaluation %s failed", args.evaluation_id)
        _end(database, args.evaluation_id, "failed", f"{type(e).__name__}: {e}")
        return 1
    return 0


def evaluate(database: Database, workspace: Workspace, evaluation_id: int) -> None:
    from backend import cpu

    with database.session() as s:
        row = s.get(Evaluation, evaluation_id)
        if row.status != "running":  # cancelled before this process started (a cluster job that waited)
            raise Cancelled
        models, suites, options = list(row.models), list(row.suites), dict(row.options)
        results = list(row.results or [])
    finished = {(r["model"], r["suite"]) for r in results}
    done = sum(r["n"] for r in results)
    t0, done_here = time.monotonic(), 0

    def progress(n: int) -> None:
        nonlocal done, done_here
        done, done_here = done + n, done_here + n
        with database.session() as s:
            row = s.get(Evaluation, evaluation_id)
            if row.status != "running":
                raise Cancelled
            rate = done_here / max(time.monotonic() - t0, 1e-6)
            row.done, row.eta_seconds = done, max(row.total - done, 0) / rate if rate else None

    with cpu.lease():
        for ref in models:
            if all((ref, s["name"]) in finished for s in suites):
                continue
            from backend.evaluate.engine import load_model, run_suite

            loaded = load_model(database, workspace, ref)
            for described in suites:
                if (ref, described["name"]) in finished:
                    continue
                metric = described["metric"] if described["kind"] == "generation" else None
                suite = suite_for(database, workspace, described["path"], metric)
                suite.name = described["name"]
                if options.get("limit"):
                    suite.rows = suite.rows[: options["limit"]]
                samples = run_suite(
                    loaded, suite, options.get("fewshot") or 0, progress, options.get("choices") or "letters"
                )
                _save(database, evaluation_id, ref, suite.name, suite.metric, samples)
        if options.get("judge"):  # the judge grades the answers written above (and the human-labelled samples)
            from backend.evaluate.jobs import samples
            from backend.evaluate.judging import judge_all

            scored = samples(database, evaluation_id)
            for label, suite, metric, rows, extra in judge_all(
                database, workspace, scored, models, options["judge"], finished, progress
            ):
                _save(database, evaluation_id, label, suite, metric, rows, extra)
    from backend.evaluate.after import run_scores

    # an evaluation after training: base vs run into the run's metrics, in the transaction that completes it
    _end(database, evaluation_id, "completed", None, run_scores(database, evaluation_id))


def _save(
    database: Database,
    evaluation_id: int,
    ref: str,
    suite: str,
    metric: str,
    samples: list[dict],
    extra: dict | None = None,
) -> None:
    scores = [s["score"] for s in samples]
    result: dict[str, Any] = {
        **(extra or {}),
        "model": ref,
        "suite": suite,
        "metric": metric,
        "score": mean_points(scores),
        "n": len(scores),
        "ci95": ci95(scores),
    }
    if metric == "accuracy":  # a classification suite: macro P/R/F1 and the confusion matrix too
        from backend.evaluate.classify import scores as classification_scores

        result["metrics"] = classification_scores(samples)
    with database.session() as s:
        s.execute(
            delete(EvalSample).where(
                EvalSample.evaluation_id == evaluation_id, EvalSample.model == ref, EvalSample.suite == suite
            )
        )
        s.add_all(EvalSample(evaluation_id=evaluation_id, model=ref, suite=suite, **x) for x in samples)
        row = s.get(Evaluation, evaluation_id)
        if row.status != "running":
            raise Cancelled
        row.results = [*(row.results or []), result]
    log.info("evaluation %s: %s on %s: %.2f (n=%d)", evaluation_id, ref, suite, result["score"], result["n"])


def _end(
    database: Database, evaluation_id: int, status: str, reason: str | None, run_metrics: dict | None = None
) -> None:
    """Leave `running` (unless a cancel came first); `run_metrics` are merged into the evaluated run's
    metrics in the same transaction."""
    with database.session() as s:
        ended = s.execute(
            update(Evaluation)
            .where(Evaluation.id == evaluation_id, Evaluation.status == "running")
            .values(status=status, reason=reason, finished_at=utcnow(), eta_seconds=None)
        ).rowcount
        if ended and run_metrics:
            run = s.get(Run, s.get(Evaluation, evaluation_id).run_id)
            if run is not None:
                run.metrics = {**(run.metrics or {}), **run_metrics}


if __name__ == "__main__":
    sys.exit(main())
