"""The supervisor's part of a hyperparameter search: one step of every live study, each tick.

For each study it:
- reports each running trial's evaluation points to Optuna and, when the median pruner says the trial
  is worse than the median of earlier trials at that step, cancels its run (the trial is "pruned");
- tells Optuna the outcome of each trial whose run ended (the objective from the run's metrics);
- queues the next trial as a run through create_run (the same checks, queue, device slots and Runs
  tab as any run) until the trial count or the time budget is reached, then records the best trial.

The supervisor reaches this through its job-kind registry (backend.runs.kinds), never by importing it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from backend.config import RunConfig
from backend.runs.kinds import LIVE
from backend.runs.queue import ACTIVE, cancel_run, create_run
from backend.search.storage import distributions, optuna_study
from backend.search.studies import is_live, suite_objective
from backend.workspace import Workspace
from db import Database, Evaluation, MetricPoint, Run, RunStatus, Study
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)
LIVE_EVALUATION = ("queued", "running")
_silent_warned = [0.0]  # when a ray search last said its cluster does not answer


def advance_studies(database: Database, workspace: Workspace) -> None:
    """One step of every live study (called by the supervisor each tick)."""
    with database.session() as s:
        live = list(s.scalars(select(Study.id).where(Study.status.in_(LIVE)).order_by(Study.id)))
    for study_id in live:
        try:
            _advance(database, workspace, study_id)
        except OperationalError:  # a locked or restarting database: the next tick tries again
            log.exception("search %d: database busy", study_id)
        except Exception as e:  # a broken study ends with the reason; the supervisor and other studies go on
            log.exception("search %d failed", study_id)
            _end(database, study_id, "failed", f"the search stopped: {e}")


def _advance(database: Database, workspace: Workspace, study_id: int) -> None:
    with database.session() as s:
        row = s.get(Study, study_id)
        cfg, created = row.config, as_utc(row.created_at)
        if row.status not in LIVE:  # stopped since the list was read
            return
        runs = {r.trial_number: r for r in s.scalars(select(Run).where(Run.study_id == study_id))}
        if row.status == "queued":
            row.status = "running"
    study = optuna_study(workspace, cfg, prune=True)
    key = cfg["metric"]
    in_flight = stopping = 0  # trials training; pruned trials whose run has yet to stop
    for t in study.get_trials(deepcopy=False):
        run = runs.get(t.number)
        if t.state == TrialState.PRUNED and run is not None:
            if not run.status.finished:
                stopping += 1
            elif not run.reason:  # the worker ended it as plain "cancelled": say why
                _set_reason(database, run.id, t.user_attrs.get("pruned", "pruned by the search"))
        if t.state != TrialState.RUNNING:
            continue
        if run is None:  # its run was deleted
            study.tell(t.number, state=TrialState.FAIL)
        elif run.status in ACTIVE:
            in_flight += 1
            if cfg["prune"] and run.status == RunStatus.running and _pruned(database, study, t, run, key, study_id):
                in_flight, stopping = in_flight - 1, stopping + 1
        elif run.status == RunStatus.completed:
            value = (run.metrics or {}).get(key)
            if value is None and suite_objective(key, cfg["settings"]):  # scored by the evaluation after the run
                waiting = _suite_scoring(database, run, key)
                if waiting is True:
                    in_flight += 1
                    continue
                if waiting:
                    optuna.trial.Trial(study, t._trial_id).set_user_attr("failed", waiting)
                    study.tell(t.number, state=TrialState.FAIL)
                    log.info("search %d: trial %d (run %d): %s", study_id, t.number, run.id, waiting)
                    continue
            if not isinstance(value, (int, float)):
                have = ", ".join(sorted(k for k, v in (run.metrics or {}).items() if isinstance(v, (int, float))))
                study.tell(t.number, state=TrialState.FAIL)
                _end(database, study_id, "failed", f"run {run.id} recorded no {key}; it has {have}")
                return
            study.tell(t.number, float(value))
        else:  # failed, cancelled or interrupted: the trial failed; the search goes on
            study.tell(t.number, state=TrialState.FAIL)
    asked = len(study.get_trials(deepcopy=False))
    budget = cfg["timeout_minutes"]
    over_time = bool(budget) and utcnow() - created > timedelta(minutes=budget)
    while asked < cfg["trials"] and not over_time and in_flight < _trial_limit(workspace, cfg):
        asking = optuna_study(workspace, cfg, asked=asked)
        if not _queue_trial(database, workspace, asking, cfg, study_id):
            return
        asked += 1
        in_flight += 1
    _record_best(database, study, study_id, runs)
    if in_flight == 0 and stopping == 0 and (asked >= cfg["trials"] or over_time):
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        why = None if done else "no trial completed; see the trials' runs for why"
        if over_time and asked < cfg["trials"]:
            why = f"the time budget of {budget:g} min ran out after {asked} of {cfg['trials']} trials"
        _end(database, study_id, "completed" if done else "failed", why)


def _suite_scoring(database: Database, run: Run, key: str) -> bool | str:
    """True while the evaluation after a completed trial run is still to come (the objective is not known
    yet); otherwise why it will never come (a failed or cancelled evaluation, none queued). The run's worker
    adds that evaluation in the transaction that completes the run, and the evaluation writes its scores into
    the run in the one that completes it (backend/evaluate/after.py): no gap to bridge."""
    with database.session() as s:
        found = s.scalars(select(Evaluation).where(Evaluation.run_id == run.id).order_by(Evaluation.id.desc())).first()
        scored = key in (s.get(Run, run.id).metrics or {})
    if found is None:
        return "no evaluation was queued after its run (see its log)"
    if found.status in LIVE_EVALUATION or scored:  # scored since this tick read the run: the next one tells
        return True
    if found.status == "completed":
        return f"its evaluation {found.id} completed without a score for {key}"
    return f"its evaluation {found.id} {found.status}: {found.reason or ''}".strip()


def _trial_limit(workspace: Workspace, cfg: dict) -> int:
    """How many trials may train at once: the search's `parallel`. A ray search queues none while its cluster
    does not answer, and with parallel 0 as many as the cluster's CPUs and GPUs hold (Ray queues the rest)."""
    if cfg.get("executor") != "ray":
        return cfg["parallel"]
    from backend.runs.ray_jobs import cluster_room, configured_address

    room = cluster_room(configured_address(workspace), cfg["cluster"])
    if room is None:
        if time.monotonic() - _silent_warned[0] > 60:  # once a minute, not every tick
            _silent_warned[0] = time.monotonic()
            log.warning("a ray search waits: no Ray cluster answers for its next trial")
        return 0
    return cfg["parallel"] or room


def _pruned(database: Database, study: optuna.Study, t: Any, run: Run, key: str, study_id: int) -> bool:
    """Report the run's new evaluation points; cancel the run if the pruner says so."""
    with database.session() as s:
        points = s.execute(
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.run_id == run.id, MetricPoint.name == key)
            .order_by(MetricPoint.step)
        ).all()
    new = {step: value for step, value in points if step not in t.intermediate_values}  # the last point per step
    if not new:
        return False
    trial = optuna.trial.Trial(study, t._trial_id)
    for step, value in new.items():
        trial.report(value, step)
    step, value = max(new.items())
    if (run.total_steps and step >= run.total_steps) or not trial.should_prune():
        return False  # at its last step a run has nothing left to save
    why = (
        f"pruned by search {study_id} at step {step}: its {key} {value:.4g} was worse than the median "
        "of the earlier trials at that step"
    )
    try:  # first the cancel, then the verdict: a run that reached its last step meanwhile completes
        cancel_run(database, run.id, if_steps_left=True)
    except ValueError:
        return False  # still in flight: its value is told when its run completes
    trial.set_user_attr("pruned", why)
    study.tell(t.number, state=TrialState.PRUNED)
    log.info("search %d: trial %d (run %d) %s", study_id, t.number, run.id, why)
    return True


def _queue_trial(database: Database, workspace: Workspace, study: optuna.Study, cfg: dict, study_id: int) -> bool:
    """Ask Optuna for the next settings and queue them as a run; False (the study ended) if refused."""
    trial = study.ask(distributions(cfg))
    settings = {**cfg["settings"], **trial.params}
    if not is_live(database, study_id):  # stopped since this tick began: no trial after a Stop
        optuna_study(workspace, cfg).tell(trial.number, state=TrialState.FAIL)
        return False
    try:
        run = create_run(
            database,
            workspace,
            RunConfig.from_dict(settings),
            name=f"search{study_id}-trial{trial.number}",
            study=(study_id, trial.number),
            executor=cfg.get("executor") or "local",  # a ray search's trials are jobs on the cluster
            cluster=cfg.get("cluster"),
        )
    except ValueError as e:  # the space was checked: this is the disk, a deleted dataset, ...
        optuna_study(workspace, cfg).tell(trial.number, state=TrialState.FAIL)  # (a grid sampler can't tell here)
        _end(database, study_id, "failed", f"trial {trial.number} could not be queued: {e}")
        return False
    trial.set_user_attr("run_id", run.id)
    if not is_live(database, study_id):  # a Stop between the check and the queueing: this run goes too
        with contextlib.suppress(ValueError):
            cancel_run(database, run.id)
    log.info("search %d: trial %d queued as run %d with %s", study_id, trial.number, run.id, trial.params)
    return True


def _record_best(database: Database, study: optuna.Study, study_id: int, runs: dict[int, Run]) -> None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return
    best = study.best_trial
    with database.session() as s:
        row = s.get(Study, study_id)
        row.best_value = best.value
        row.best_run_id = best.user_attrs.get("run_id") or (runs[best.number].id if best.number in runs else None)


def _end(database: Database, study_id: int, status: str, reason: str | None) -> None:
    with database.session() as s:
        row = s.get(Study, study_id)
        if row.status in LIVE:
            row.status, row.reason, row.finished_at = status, reason, utcnow()
    log.info("search %d %s%s", study_id, status, f": {reason}" if reason else "")


def _set_reason(database: Database, run_id: int, reason: str) -> None:
    with database.session() as s:
        s.get(Run, run_id).reason = reason
