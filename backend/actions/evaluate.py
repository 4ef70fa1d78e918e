"""Evaluate: models scored on suites as a background job (backend/evaluate), for the CLI, the API and the tab.

evaluate(services, ["base:SmolLM2-135M-Instruct", "run:3"], ["identity", "mc-en"], wait=True)
# {"id", "status", "results": [{"model", "suite", "metric", "score", "n", "ci95"}], "differences": [...]}
evaluation_show(services, 1)  # adds "samples": every model's answer and score per prompt
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.services import Services


def evaluate(
    services: Services,
    models: list[str],
    suites: list[str],
    metric: str | None = None,
    fewshot: int = 0,
    limit: int | None = None,
    wait: bool = False,
    timeout: float | None = None,
    judge: dict[str, Any] | None = None,
    choices: str = "letters",
    executor: str = "local",
    cluster: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Queue an evaluation of every model on every suite (checked first; nothing written on a refusal);
    `judge` {"model", "mode", "rubric", "human"}: a judge model grades the answers too; `choices`: multiple
    choice as letters (MMLU's format) or cloze (each option's text scored); `executor` ray: a job on the
    workspace's Ray cluster, `cluster` {"worker_cpus", "worker_gpus"} its resources."""
    from backend.evaluate.jobs import create_evaluation

    row = create_evaluation(
        services.database,
        services.workspace,
        list(models),
        list(suites),
        metric,
        int(fewshot or 0),
        limit or None,
        judge=judge or None,
        choices=choices or "letters",
        executor=executor or "local",
        cluster={k: v for k, v in (cluster or {}).items() if v is not None} or None,
    )
    if wait:
        from backend.actions.waiting import supervise_while
        from backend.evaluate.jobs import LIVE, get_evaluation

        busy = lambda: get_evaluation(services.database, row.id).status in LIVE  # noqa: E731
        supervise_while(services, busy, timeout, f"evaluation {row.id}")
    return evaluation_summary(services, row.id)


def evaluation_summary(services: Services, evaluation_id: int) -> dict[str, Any]:
    """Status, progress and results, with each model's difference from the first on every suite."""
    from backend.evaluate.compare import differences
    from backend.evaluate.jobs import get_evaluation, samples, summary

    out = summary(get_evaluation(services.database, int(evaluation_id)))
    out["differences"] = differences(out["results"], samples(services.database, int(evaluation_id)))
    return out


def evaluation_show(
    services: Services, evaluation_id: int, disagreements_only: bool = False, csv: str | None = None
) -> dict[str, Any]:
    """The summary plus every per-sample row (only where the models' scores differ, with
    `disagreements_only`); `csv`: also write the rows side by side (a model's answer and score per column)."""
    from backend.evaluate.compare import side_by_side
    from backend.evaluate.jobs import samples

    rows = samples(services.database, int(evaluation_id))
    if disagreements_only:
        kept = {(r["suite"], r["index"]) for r in side_by_side(rows, True)}
        rows = [r for r in rows if (r["suite"], r["index"]) in kept]
    out = {**evaluation_summary(services, evaluation_id), "samples": rows}
    if csv:
        out["csv"] = str(write_csv(side_by_side(rows), csv))
    return out


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Rows (dicts) as a UTF-8 CSV with a header (Excel opens Chinese text right: a BOM is written)."""
    import csv

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = list(dict.fromkeys(k for r in rows for k in r))
    with target.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return target


def evaluation_list(services: Services, limit: int = 50) -> list[dict[str, Any]]:
    from backend.evaluate.jobs import list_evaluations, summary

    return [summary(e) for e in list_evaluations(services.database, limit)]


def evaluation_cancel(services: Services, evaluation_id: int) -> dict[str, Any]:
    from backend.evaluate.jobs import cancel_evaluation

    cancel_evaluation(services.database, int(evaluation_id), services.workspace)
    return evaluation_summary(services, evaluation_id)
