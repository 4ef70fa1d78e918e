"""Where Optuna keeps a search's decisions, and the Optuna study of a search's settings.

Optuna keeps its own tables (its own `studies`, `trials`, ... and its own Alembic version table). They
would collide with Tuneboard's on one database, so they live in a database of their own beside it:
workspace/search.db, or $TUNEBOARD_SEARCH_DB (any SQLAlchemy URL, e.g. a database on the same server).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

from backend.search.space import grid, parse_space
from backend.workspace import Workspace

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our log says what matters; no line per trial on stderr

_storages: dict[str, optuna.storages.RDBStorage] = {}
_storages_lock = threading.Lock()


def search_url(workspace: Workspace) -> str:
    return os.environ.get("TUNEBOARD_SEARCH_DB") or f"sqlite:///{workspace.root / 'search.db'}"


def storage(workspace: Workspace) -> optuna.storages.RDBStorage:
    url = search_url(workspace)
    with _storages_lock:
        if url not in _storages:
            _storages[url] = optuna.storages.RDBStorage(url)
        return _storages[url]


def distributions(cfg: dict) -> dict[str, Any]:
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
    return optuna.load_study(study_name=cfg["optuna_name"], storage=storage(workspace), sampler=sampler, pruner=pruner)
