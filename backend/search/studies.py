"""Hyperparameter searches with Optuna: a study is a job whose trials are ordinary runs.

create_study checks the base settings, the space (backend.search.space) and the options, then records a
`studies` row and its Optuna study; nothing is written when anything is refused. stop_study ends one.
The supervisor advances live studies on every tick (backend.search.driver, plugged in as a job kind:
backend.runs.kinds). Every decision is read from and written to the databases, so a study carries on
after an app restart.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from sqlalchemy import select

from backend.config import NEEDS_VALIDATION, RunConfig
from backend.data.store import find_dataset
from backend.runs.kinds import LIVE
from backend.runs.queue import ACTIVE, cancel_run, check_run
from backend.search.space import grid, parse_space
from backend.search.storage import optuna_study, storage
from backend.workspace import Workspace
from db import Database, Run, Study
from db.models import utcnow

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "grid")
DIRECTIONS = ("minimize", "maximize")
DEFAULT_TRIALS = 10
GENERATED = ("eval_bleu4", "eval_rouge_l")  # chat metrics scored on generated answers (eval_samples)
EXECUTORS = ("local", "ray")
CLUSTER = ("workers", "worker_cpus", "worker_gpus")  # a ray search's options, as `train --executor ray` takes them
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
    parallel: int = 1  # trials queued at once (each still waits for a free device slot); 0: the Ray cluster's room
    seed: int = 42
    executor: str = "local"  # where each trial's run trains: local (this machine) or ray (a job on the Ray cluster)
    workers: int | None = None  # with executor ray: each trial's Ray Train workers, and the resources of each
    worker_cpus: float | None = None
    worker_gpus: float | None = None


def suite_objective(key: str, settings: dict[str, Any]) -> str | None:
    """The eval suite a key such as 'eval_identity' names (a shipped suite, or one in eval_suites), else None.
    Such an objective is the trial run's score on that suite, from the evaluation after its training."""
    from backend.evaluate.suites import SHIPPED

    if not key.startswith("eval_"):
        return None
    name = key.removeprefix("eval_")
    named = {Path(x.strip()).name: x.strip() for x in str(settings.get("eval_suites") or "").split(",") if x.strip()}
    return named.get(name) or (name if name in SHIPPED else None)


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
    from backend.runs.supervisor import notify

    settings = {k: v for k, v in settings.items() if v is not None}
    base = RunConfig.from_dict(settings)
    distributions = parse_space(space)
    key = objective_key(options.metric)
    suite = suite_objective(key, settings)
    _check_options(options, key, suite)
    ds = find_dataset(database, base.dataset)
    if suite:  # scored by the evaluation each trial's run queues when it completes (eval_suites)
        listed = [x.strip() for x in str(settings.get("eval_suites") or "").split(",") if x.strip()]
        if suite not in listed:
            settings["eval_suites"] = ",".join([*listed, suite])
        from backend.evaluate.suites import load_suite

        load_suite(suite)  # a bad suite file is refused now, not after the first trial has trained
    elif key.startswith("eval_") and "validation" not in (ds.splits or {}) and not base.val_ratio:
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
    if suite and base.task != "sft":
        raise ValueError(f"the objective {key} is an eval suite's score: suites score chat (sft) runs only")
    if base.task == "sft" and "eval_samples" not in settings and key not in GENERATED:
        settings["eval_samples"] = 0  # answering validation prompts takes long and the objective doesn't use it
    if options.prune and not base.eval_steps:  # pruning needs points during the run
        settings["eval_steps"] = max(1, _steps(base, ds.splits or {}) // EVALS_PER_TRIAL)
    check_run(database, workspace, RunConfig.from_dict(settings))
    cluster = _cluster(workspace, options, RunConfig.from_dict(settings))
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
    for given in CLUSTER:  # kept checked, with their defaults, as `cluster`: what each trial's run is queued with
        config.pop(given)
    config["cluster"] = cluster
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
        optuna.create_study(study_name=optuna_name, storage=storage(workspace), direction=options.direction)
    except Exception:
        with database.session() as s:
            s.delete(s.get(Study, row.id))
        raise
    with database.session() as s:
        row = s.get(Study, row.id)
        row.status = "queued"
    notify(workspace)
    return row


def _steps(cfg: RunConfig, splits: dict[str, int]) -> int:
    """A trial's optimizer steps: max_steps, else an estimate from the training rows (packing shortens it)."""
    if cfg.max_steps:
        return cfg.max_steps
    rows = splits.get("train", 0) * (1 - (cfg.val_ratio if "validation" not in splits else 0))
    return max(1, math.ceil(rows / (cfg.batch_size * cfg.grad_accum * cfg.world_size)) * math.ceil(cfg.epochs))


def _cluster(workspace: Workspace, options: SearchOptions, cfg: RunConfig) -> dict[str, Any] | None:
    """A ray search's per-trial workers and resources, checked as a ray run's are (Ray installed, the cluster
    answering); None for a local one, which takes none of them."""
    given = {k: getattr(options, k) for k in CLUSTER if getattr(options, k) is not None}
    if options.executor not in EXECUTORS:
        raise ValueError(
            f"setting 'executor': {options.executor!r} is not one of {', '.join(EXECUTORS)} (a search's trials "
            "train on this machine or on a Ray cluster)"
        )
    if options.executor != "ray":
        if given:
            raise ValueError("--workers, --worker-cpus and --worker-gpus are for --executor ray (here: --nproc)")
        if options.parallel == 0:
            raise ValueError("--parallel 0 (as many trials as the cluster has room for) is for --executor ray")
        return None
    from backend.runs.ray_jobs import cluster_settings

    return cluster_settings(workspace, given, cfg)


def _check_options(options: SearchOptions, key: str, suite: str | None = None) -> None:
    if options.sampler not in SAMPLERS:
        raise ValueError(f"sampler '{options.sampler}' is not one of {', '.join(SAMPLERS)}")
    if options.direction not in DIRECTIONS:
        raise ValueError(f"direction '{options.direction}' is not one of {', '.join(DIRECTIONS)}")
    if options.trials < 0:
        raise ValueError("trials must be 0 (the default count, or the whole grid) or more")
    if options.parallel < 0:
        raise ValueError("parallel must be at least 1 (or 0 with --executor ray: as many as the cluster has room for)")
    if options.timeout_minutes < 0:
        raise ValueError("the time budget must be 0 (none) or more minutes")
    if options.prune_startup < 0:
        raise ValueError("prune_startup must be 0 or more")
    if options.prune and (key in GENERATED or suite):
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


def is_live(database: Database, study_id: int) -> bool:
    """Whether the search is queued or running (the supervisor still advances it)."""
    with database.session() as s:
        return s.get(Study, study_id).status in LIVE
