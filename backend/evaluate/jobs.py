"""Evaluations as jobs: an `evaluations` row per request (models x suites), its samples in `eval_samples`.

`create_evaluation` checks every model and suite first (nothing is written on a refusal), then queues a
row; the supervisor's driver (backend/evaluate/driver.py) starts its process (backend/evaluate/worker.py).

    e = create_evaluation(database, workspace, ["base:SmolLM2-135M-Instruct", "run:3"], ["identity"], fewshot=0)
    summary(get_evaluation(database, e.id))   # {"id", "status", "progress", "eta_seconds", "results": [...]}
    samples(database, e.id)                    # per-sample rows, each model's answer side by side
    cancel_evaluation(database, e.id)
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from sqlalchemy import select, update

from backend.evaluate.cluster import EXECUTORS, RAY, cluster_options, stop_job
from backend.evaluate.engine import CHOICE_FORMATS, check_ref, is_classifier
from backend.evaluate.suites import Suite, load_suite
from backend.workspace import Workspace
from db import Database, EvalSample, Evaluation
from db.models import utcnow

LIVE = ("queued", "running")


def create_evaluation(database: Database, workspace: Workspace, *settings: Any, **named: Any) -> Evaluation:
    """Check every model and suite, then queue one evaluation of each model on each suite (nothing is
    written on a refusal); the settings (models, suites, metric, fewshot, limit, ...) are `build_evaluation`'s."""
    row = build_evaluation(database, workspace, *settings, **named)
    with database.session() as s:
        s.add(row)
    return row


def build_evaluation(
    database: Database,
    workspace: Workspace,
    models: list[str],
    suites: list[str],
    metric: str | None = None,
    fewshot: int = 0,
    limit: int | None = None,
    run_id: int | None = None,
    judge: dict[str, Any] | None = None,
    completing: bool = False,
    choices: str = "letters",
    executor: str = "local",
    cluster: dict[str, Any] | None = None,
) -> Evaluation:
    """The checked, unsaved row of one evaluation of each model on each suite; `judge` ({"model", "mode",
    "rubric", "human"}) also has a judge model grade the generation suites' answers. `completing`: run
    `run_id` is being marked completed in the transaction that adds this row (eval after training), so
    its model is not looked up as a completed run's yet. `choices`: the multiple-choice suites' format,
    letters (MMLU's) or cloze (each option's text scored; backend/evaluate/engine.py). `executor` ray, with
    `cluster` {"worker_cpus", "worker_gpus"}: a job on the workspace's Ray cluster (backend/evaluate/cluster.py)."""
    if not models:
        raise ValueError("setting 'model': name at least one (base:NAME, run:ID or a folder)")
    if not suites:
        raise ValueError("setting 'suite': name at least one (a shipped suite or a file)")
    if fewshot < 0 or fewshot > 25:
        raise ValueError(f"setting 'fewshot': {fewshot} is not between 0 and 25")
    if executor not in EXECUTORS:
        raise ValueError(f"setting 'executor': {executor!r} is not one of {', '.join(EXECUTORS)}")
    if cluster and executor != RAY:
        raise ValueError("--worker-cpus and --worker-gpus are a Ray job's resources: add --executor ray")
    if choices not in CHOICE_FORMATS:
        raise ValueError(f"setting 'choices': {choices!r} is not one of {', '.join(CHOICE_FORMATS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"setting 'limit': {limit} must be at least 1")
    finishing = f"run:{run_id}" if completing else None  # eval_suites: chat runs only (backend/config.py)
    for ref in models:
        if ref != finishing:
            check_ref(database, workspace, ref)
    checked = [suite_for(database, workspace, s, metric) for s in suites]
    for ref in models:
        classifier = ref != finishing and is_classifier(database, ref)
        for suite in checked:
            if classifier != (suite.kind == "classification"):
                need = "a text-classification run" if suite.kind == "classification" else "a language model"
                raise ValueError(f"setting 'model': suite '{suite.name}' needs {need}; '{ref}' is not one")
    for suite in checked:
        if suite.kind == "choice" and fewshot >= len(suite.rows[:limit] if limit else suite.rows):
            raise ValueError(f"setting 'fewshot': suite '{suite.name}' has too few rows for {fewshot} examples")
    names = [s.name for s in checked]
    if len(set(names)) < len(names):
        raise ValueError(f"setting 'suite': {names} names one suite twice; give each once")
    total = len(models) * sum(min(len(s.rows), limit or len(s.rows)) for s in checked)
    if judge:
        from backend.evaluate.judging import check_judge, work

        judge = check_judge(database, workspace, judge, list(dict.fromkeys(models)))
        if not any(s.kind == "generation" for s in checked):
            raise ValueError("setting 'judge': a judge grades written answers; add a generation suite")
        total += work(list(dict.fromkeys(models)), [x.describe() for x in checked], judge, limit)
    resources = cluster_options(workspace, **(cluster or {})) if executor == RAY else None
    return Evaluation(
        status="queued",
        executor=executor,
        models=list(dict.fromkeys(models)),
        suites=[x.describe() for x in checked],
        options={
            "fewshot": fewshot,
            "limit": limit,
            "metric": metric,
            **({"choices": choices} if any(s.kind == "choice" for s in checked) else {}),
            **({"judge": judge} if judge else {}),
            **({"cluster": resources} if resources else {}),
        },
        results=[],
        total=total,
        run_id=run_id,
    )


def suite_for(database: Database, workspace: Workspace, source: str, metric: str | None = None) -> Suite:
    """A shipped suite, a file, or `dataset:NAME[:SPLIT]` (a labelled split, for classifier runs)."""
    from backend.evaluate.classify import PREFIX, dataset_suite

    if source.startswith(PREFIX):
        return dataset_suite(database, workspace, source)
    return load_suite(source, metric)


def get_evaluation(database: Database, evaluation_id: int) -> Evaluation:
    with database.session() as s:
        row = s.get(Evaluation, int(evaluation_id))
        if row is None:
            raise ValueError(f"evaluation {evaluation_id} not found; `evaluate list` shows them")
        return row


def list_evaluations(database: Database, limit: int = 50) -> list[Evaluation]:
    with database.session() as s:
        return list(s.scalars(select(Evaluation).order_by(Evaluation.id.desc()).limit(limit)))


def cancel_evaluation(database: Database, evaluation_id: int, workspace: Workspace | None = None) -> Evaluation:
    """End a queued or running evaluation; results scored so far stay. With the `workspace`, a Ray job of
    its is stopped at once (its worker also stops by itself at its next batch)."""
    row = get_evaluation(database, evaluation_id)
    with database.session() as s:
        changed = s.execute(
            update(Evaluation)
            .where(Evaluation.id == row.id, Evaluation.status.in_(LIVE))
            .values(status="cancelled", finished_at=utcnow(), reason="cancelled", eta_seconds=None)
        ).rowcount
    if not changed:
        raise ValueError(f"evaluation {row.id} is {row.status}; only a queued or running one can be cancelled")
    if row.pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(row.pid, signal.SIGTERM)
    if row.cluster_job_id and workspace is not None:
        stop_job(workspace, row.cluster_job_id)
    return get_evaluation(database, row.id)


def summary(e: Evaluation) -> dict[str, Any]:
    """An evaluation as the CLI, the API and the Evaluate tab show it."""
    return {
        "id": e.id,
        "status": e.status,
        "models": e.models,
        "suites": [s["name"] for s in e.suites],
        "options": e.options,
        "done": e.done,
        "total": e.total,
        "progress": round(e.done / e.total, 4) if e.total else 0.0,
        "eta_seconds": round(e.eta_seconds) if e.eta_seconds is not None else None,
        "results": list(e.results or []),
        "reason": e.reason,
        "run_id": e.run_id,
        "executor": e.executor,  # local (this machine) or ray (a job on the cluster: cluster_job_id)
        "cluster_job_id": e.cluster_job_id,
        "created_at": e.created_at.isoformat() if e.created_at else None,
    }


def samples(database: Database, evaluation_id: int) -> list[dict[str, Any]]:
    """Every scored sample, in suite order, one row per (model, suite, sample)."""
    get_evaluation(database, evaluation_id)
    with database.session() as s:
        found = s.scalars(
            select(EvalSample)
            .where(EvalSample.evaluation_id == int(evaluation_id))
            .order_by(EvalSample.suite, EvalSample.index, EvalSample.id)
        )
        return [
            {
                "model": x.model,
                "suite": x.suite,
                "index": x.index,
                "prompt": x.prompt,
                "reference": x.reference,
                "answer": x.answer,
                "score": x.score,
                "detail": x.detail,
            }
            for x in found
        ]
