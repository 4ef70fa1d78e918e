"""Hyperparameter searches with Optuna: a study is a job whose trials are ordinary runs.

create_study checks the base settings, the space (backend.search_space) and the options, then records a
`studies` row and its Optuna study; nothing is written when anything is refused. The supervisor calls
advance_studies() on every tick. For each study it:
- reports each running trial's evaluation points to Optuna and, when the median pruner says the trial
  is worse than the median of earlier trials at that step, cancels its run (the trial is "pruned");
- tells Optuna the outcome of each trial whose run ended (the objective from the run's metrics);
- queues the next trial as a run through create_run (the same checks, queue, device slots and Runs
  tab as any run) until the trial count or the time budget is reached, then records the best trial.
Every decision is read from and written to the databases, so a study carries on after an app restart.

Optuna keeps its own tables (its own `studies`, `trials`, ... and its own Alembic version table). They
would collide with Tuneboard's on one database, so they live in a database of their own beside it:
workspace/search.db, or $TUNEBOARD_SEARCH_DB (any SQLAlchemy URL, e.g. a database on the same server).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from backend.config import NEEDS_VALIDATION, RunConfig
from backend.data.store import find_dataset
from backend.jobs import LIVE_STUDIES as LIVE
from backend.runs import ACTIVE, cancel_run, check_run, create_run
from backend.search_space import grid, parse_space
from backend.workspace import Workspace
from db import Database, MetricPoint, Run, RunStatus, Study
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # our log says what matters; no line per trial on stderr

SAMPLERS = ("tpe", "random", "grid")
DIRECTIONS = ("minimize", "maximize")
DEFAULT_TRIALS = 10
GENERATED = ("eval_bleu4", "eval_rouge_l")  # chat metrics scored on generated answers (eval_samples)
EVALS_PER_TRIAL = 4  # a pruned search evaluates each trial this often when max_steps is set and eval_steps is not


@dataclass
class SearchOptions:
    """How a study searches; the defaults are what the Search tab and CLI start from."""

    metric: str = "eval_loss"
    direction: str = "minimize"
    sampler: str = "tpe"
    trials: int = 0  # 0: DEFAULT_TRIALS, or the whole grid
    timeout_minutes: float = 0.0  # 0: no budget; else no new trial starts after this long
    prune: bool = True
    prune_startup: int = 2  # trials that run to the end before the pruner compares
    parallel: int = 1  # trials queued at once (each still waits for a free device slot)
    seed: int = 42


def objective_key(metric: str) -> str:
    """The run metric a study optimizes: 'loss' -> 'eval_loss'; train_loss and eval_* as given."""
    metric = metric.strip()
    return metric if metric.startswith("eval_") or metric in ("train_loss", "final_loss") else f"eval_{metric}"


# -- creating and stopping ---------------------------------------------------------------------------


def create_study(
    database: Database,
    workspace: Workspace,
    settings: dict[str, Any],
    space: dict[str, Any],
    options: SearchOptions,
    name: str = "",
) -> Study:
    """Check everything, then record the study; its first trial is queued on the supervisor's next tick."""
    from backend.jobs import notify

    settings = {k: v for k, v in settings.items() if v is not None}
    base = RunConfig.from_dict(settings)
    distributions = parse_space(space)
    key = objective_key(options.metric)
    _check_options(options, key)
    ds = find_dataset(database, base.dataset)
    if key.startswith("eval_") and "validation" not in (ds.splits or {}) and not base.val_ratio:
        raise ValueError(
            f"the objective {key} is measured on a validation split and dataset '{ds.name}' has none: "
            f"set val_ratio (e.g. 0.2), or use the metric train_loss. ({NEEDS_VALIDATION})"
        )
    trials = options.trials or DEFAULT_TRIALS
    if options.sampler == "grid":
        size = math.prod(len(v) for v in grid(distributions).values())
        trials = options.trials or size
        if trials > size:
            raise ValueError(f"the grid has {size} points; set trials to {size} or fewer (0: the whole grid)")
    if base.task == "sft" and "eval_samples" not in settings and key not in GENERATED:
        settings["eval_samples"] = 0  # answering validation prompts takes long and the objective doesn't use it
    if options.prune and not base.eval_steps:  # pruning needs points during the run
        settings["eval_steps"] = max(1, _steps(base, ds.splits or {}) // EVALS_PER_TRIAL)
    check_run(database, workspace, RunConfig.from_dict(settings))
    for param, dist in distributions.items():  # each end of each range, each choice: refused now, not mid-study
        ends = dist.choices if isinstance(dist, CategoricalDistribution) else (dist.low, dist.high)
        for value in ends:
            try:
                check_run(database, workspace, RunConfig.from_dict({**settings, param: value}))
            except ValueError as e:
                raise ValueError(f"search space: {param} = {value!r} would be refused: {e}") from None
    # Optuna's name for it: unique, so a search.db that outlived tuneboard.db (or is shared) never clashes.
    optuna_name = f"tuneboard-{uuid.uuid4().hex}"
    config = {**asdict(options), "metric": key, "trials": trials, "settings": settings, "space": space}
    config["optuna_name"] = optuna_name
    with database.session() as s:
        row = Study(  # not live until its Optuna study exists: the supervisor would find none
            name=name or f"{options.sampler}-{base.method}-{ds.name}",
            status="preparing",
            task=base.task,
            model=base.model,
            method=base.method,
            dataset_id=ds.id,
            config=config,
        )
        s.add(row)
    try:
        optuna.create_study(study_name=optuna_name, storage=_storage(workspace), direction=options.direction)
    except Exception:
        with database.session() as s:
            s.delete(s.get(Study, row.id))
        raise
    with database.session() as s:
        row = s.get(Study, row.id)
        row.status = "queued"
    notify()
    return row


def _steps(cfg: RunConfig, splits: dict[str, int]) -> int:
    """A trial's optimizer steps: max_steps, else an estimate from the training rows (packing shortens it)."""
    if cfg.max_steps:
        return cfg.max_steps
    rows = splits.get("train", 0) * (1 - (cfg.val_ratio if "validation" not in splits else 0))
    return max(1, math.ceil(rows / (cfg.batch_size * cfg.grad_accum * cfg.world_size)) * math.ceil(cfg.epochs))


def _check_options(options: SearchOptions, key: str) -> None:
    if options.sampler not in SAMPLERS:
        raise ValueError(f"sampler '{options.sampler}' is not one of {', '.join(SAMPLERS)}")
    if options.direction not in DIRECTIONS:
        raise ValueError(f"direction '{options.direction}' is not one of {', '.join(DIRECTIONS)}")
    if options.trials < 0:
        raise ValueError("trials must be 0 (the default count, or the whole grid) or more")
    if options.parallel < 1:
        raise ValueError("parallel must be at least 1")
    if options.timeout_minutes < 0:
        raise ValueError("the time budget must be 0 (none) or more minutes")
    if options.prune_startup < 0:
        raise ValueError("prune_startup must be 0 or more")
    if options.prune and key in GENERATED:
        raise ValueError(f"{key} is scored once, at the end of a trial, so it cannot prune: turn pruning off")
    if options.prune and not key.startswith("eval_"):
        raise ValueError(
            f"pruning compares evaluation points and {key} has none: choose an eval metric or turn pruning off"
        )


def stop_study(database: Database, workspace: Workspace, study_id: int) -> Study:
    """Stop a search: no new trials, the running ones cancelled (their checkpoints kept)."""
    with database.session() as s:
        row = require_study(s, study_id)
        if row.status not in LIVE:
            raise ValueError(f"search {study_id} is {row.status}; only a queued or running search can be stopped")
        row.status, row.finished_at, row.reason = "stopped", utcnow(), "stopped by the user"
        active = list(s.scalars(select(Run.id).where(Run.study_id == study_id, Run.status.in_(ACTIVE))))
    for run_id in active:
        with contextlib.suppress(ValueError):  # it ended meanwhile
            cancel_run(database, run_id)
    study = optuna_study(workspace, row.config)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    with database.session() as s:
        return s.get(Study, study_id)


def require_study(s, study_id: int) -> Study:
    row = s.get(Study, study_id)
    if row is None:
        raise ValueError(f"search {study_id} does not exist; `search list` shows the searches")
    return row


# -- the supervisor's part ------------------------------------------------------------------------------


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
    while in_flight < cfg["parallel"] and asked < cfg["trials"] and not over_time:
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
    trial.set_user_attr("pruned", why)
    study.tell(t.number, state=TrialState.PRUNED)
    with contextlib.suppress(ValueError):  # it finished meanwhile
        cancel_run(database, run.id)
    log.info("search %d: trial %d (run %d) %s", study_id, t.number, run.id, why)
    return True


def _queue_trial(database: Database, workspace: Workspace, study: optuna.Study, cfg: dict, study_id: int) -> bool:
    """Ask Optuna for the next settings and queue them as a run; False (the study ended) if refused."""
    trial = study.ask(_distributions(cfg))
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


def is_live(database: Database, study_id: int) -> bool:
    """Whether the search is queued or running (the supervisor still advances it)."""
    with database.session() as s:
        return s.get(Study, study_id).status in LIVE


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


# -- Optuna ------------------------------------------------------------------------------------------

_storages: dict[str, optuna.storages.RDBStorage] = {}
_storages_lock = threading.Lock()


def search_url(workspace: Workspace) -> str:
    return os.environ.get("TUNEBOARD_SEARCH_DB") or f"sqlite:///{workspace.root / 'search.db'}"


def _storage(workspace: Workspace) -> optuna.storages.RDBStorage:
    url = search_url(workspace)
    with _storages_lock:
        if url not in _storages:
            _storages[url] = optuna.storages.RDBStorage(url)
        return _storages[url]


def _distributions(cfg: dict) -> dict[str, Any]:
    space = parse_space(cfg["space"])
    if cfg["sampler"] == "grid":  # the grid's own points, so each trial is exactly one of them
        return {name: CategoricalDistribution(values) for name, values in grid(space).items()}
    return space


def optuna_study(workspace: Workspace, cfg: dict, *, prune: bool = False, asked: int | None = None) -> optuna.Study:
    """The Optuna study of a study's config: with its pruner (`prune`) or, to ask for trial number `asked`,
    its sampler. Each trial's sampler is seeded anew (the study's seed + `asked`), so trials differ also
    across restarts; a grid keeps the study's seed, which fixes the order of its points."""
    sampler = pruner = None
    if prune:
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=cfg["prune_startup"], n_warmup_steps=0)
            if cfg["prune"]
            else optuna.pruners.NopPruner()
        )
    if asked is not None:
        if cfg["sampler"] == "grid":
            sampler = optuna.samplers.GridSampler(grid(parse_space(cfg["space"])), seed=cfg["seed"])
        elif cfg["sampler"] == "random":
            sampler = optuna.samplers.RandomSampler(seed=cfg["seed"] + asked)
        else:
            startup = max(2, min(10, cfg["trials"] // 3))  # random first, then the model of what worked
            sampler = optuna.samplers.TPESampler(seed=cfg["seed"] + asked, n_startup_trials=startup)
    return optuna.load_study(study_name=cfg["optuna_name"], storage=_storage(workspace), sampler=sampler, pruner=pruner)
