"""Hyperparameter search actions: start (optionally waiting), show, stop, list."""

from __future__ import annotations

from typing import Any

from backend.actions.runs import with_dataset_task
from backend.actions.waiting import supervise_while
from backend.services import Services


def search(
    services: Services,
    settings: dict[str, Any],
    space: dict[str, Any],
    options: dict[str, Any] | None = None,
    name: str = "",
    wait: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Start a hyperparameter search (trials are runs); with `wait`, return when it ends."""
    from backend.search.results import study_report
    from backend.search.studies import SearchOptions, create_study, is_live

    known = set(SearchOptions.__dataclass_fields__)
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise ValueError(f"unknown search option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    given = {k: v for k, v in (options or {}).items() if v is not None}
    settings = with_dataset_task(services, settings)
    study = create_study(services.database, services.workspace, settings, space, SearchOptions(**given), name=name)
    if wait:
        supervise_while(services, lambda: is_live(services.database, study.id), timeout, f"search {study.id}")
    return study_report(services.database, services.workspace, study.id)


def show_search(services: Services, study_id: int) -> dict[str, Any]:
    """A search with every trial (run id, params, value, state), best params and value."""
    from backend.search.results import study_report

    return study_report(services.database, services.workspace, study_id)


def stop_search(services: Services, study_id: int) -> dict[str, Any]:
    """Stop a search: no new trials; running trials are cancelled."""
    from backend.search.results import study_report
    from backend.search.studies import stop_study

    stop_study(services.database, services.workspace, study_id)
    return study_report(services.database, services.workspace, study_id)


def list_searches(services: Services) -> list[dict[str, Any]]:
    from backend.search.results import list_studies

    return list_studies(services.database)
