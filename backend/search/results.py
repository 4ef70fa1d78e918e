"""Reading hyperparameter searches: a study with its trials, the list of studies, and Optuna's plots.

(backend.search.studies creates and stops them; backend.search.driver advances them.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import select

from backend.search.storage import optuna_study
from backend.search.studies import require_study
from backend.workspace import Workspace
from db import Database, Dataset, Run, Study


def study_report(database: Database, workspace: Workspace, study_id: int) -> dict[str, Any]:
    """A study with its trials (run, params, value, state), best params and value: what `search show` prints."""
    with database.session() as s:
        row = require_study(s, study_id)
        runs = {r.trial_number: r for r in s.scalars(select(Run).where(Run.study_id == study_id))}
        dataset = s.get(Dataset, row.dataset_id) if row.dataset_id else None
        dataset = dataset.name if dataset else None
    cfg = row.config
    study = optuna_study(workspace, cfg)
    trials = []
    for t in study.get_trials(deepcopy=False):
        run = runs.get(t.number)
        state = t.state.name.lower()
        if t.state == TrialState.RUNNING:
            state = run.status.value if run is not None else "failed"
        trials.append(
            {
                "number": t.number,
                "run_id": run.id if run else t.user_attrs.get("run_id"),
                "run_name": run.name if run else None,
                "state": state,
                "params": t.params,
                "value": t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
                "evaluations": len(t.intermediate_values),
                "note": t.user_attrs.get("pruned"),
            }
        )
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = trials[study.best_trial.number] if done else None  # Optuna's pick, by the study's direction
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "reason": row.reason,
        "task": row.task,
        "model": row.model,
        "method": row.method,
        "dataset": dataset or cfg["settings"].get("dataset"),
        "metric": cfg["metric"],
        "direction": cfg["direction"],
        "sampler": cfg["sampler"],
        "trials_planned": cfg["trials"],
        "timeout_minutes": cfg["timeout_minutes"],
        "prune": cfg["prune"],
        "parallel": cfg["parallel"],  # 0: as many trials as the Ray cluster has room for
        "executor": cfg.get("executor") or "local",  # where each trial's run trains
        "cluster": cfg.get("cluster"),  # a ray search's workers and resources per worker, for each trial
        "space": cfg["space"],
        "settings": cfg["settings"],
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "counts": dict(Counter(t["state"] for t in trials)),
        "trials": trials,
        "best_params": best["params"] if best else None,
        "best_value": best["value"] if best else None,
        "best_run_id": best["run_id"] if best else None,
    }


def list_studies(database: Database, limit: int = 200) -> list[dict[str, Any]]:
    """The newest searches, a line each."""
    with database.session() as s:
        rows = list(s.scalars(select(Study).order_by(Study.id.desc()).limit(limit)))
        counts = Counter(s.scalars(select(Run.study_id).where(Run.study_id.in_([r.id for r in rows]))) if rows else [])
    return [
        {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "sampler": r.config.get("sampler"),
            "metric": r.config.get("metric"),
            "trials": counts.get(r.id, 0),
            "trials_planned": r.config.get("trials"),
            "best_value": r.best_value,
            "best_run_id": r.best_run_id,
            "created_at": r.created_at.isoformat() if r.created_at else None,
        }
        for r in rows
    ]


def study_figures(database: Database, workspace: Workspace, study_id: int) -> dict[str, Any]:
    """Plotly figures: optimization history, parameter importance, parallel coordinates (None until there is
    enough to draw: importance needs two completed trials)."""
    import optuna.visualization as vis

    with database.session() as s:
        cfg = require_study(s, study_id).config
    study = optuna_study(workspace, cfg)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    figures: dict[str, Any] = {"history": None, "importance": None, "parallel": None}
    if not done:
        return figures
    figures["history"] = vis.plot_optimization_history(study)
    figures["parallel"] = vis.plot_parallel_coordinate(study)
    varied = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    if len(done) >= 2 and varied:
        figures["importance"] = vis.plot_param_importances(study)
    return figures
