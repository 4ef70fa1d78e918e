"""The main actions as JSON-shaped results: one definition shared by the CLI and the Gradio API.

Each takes the Services and plain values, and returns dicts/lists that serialize to JSON as they
are. User errors are ValueErrors naming the setting, row or id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.config import GREEDY, GenerationConfig, RunConfig
from backend.services import Services


def add_datasets(
    services: Services,
    path: str | Path,
    name: str | None = None,
    options: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Import a file, folder, zip or hub id: one summary per dataset (a LLaMA-Factory folder gives several).

    `options` are ImportOptions fields (format, task, text_column, label_column, val_ratio, ...).
    Each summary says whether it was `created` or is an identical dataset already there (`duplicate_of`).
    """
    from backend.data import ImportOptions, dataset_summary, import_path

    opts = ImportOptions(**{k: v for k, v in (options or {}).items() if v not in (None, "")})
    results = import_path(services.database, services.workspace, path, name or None, opts, progress)
    return [
        {
            **dataset_summary(r.dataset),
            "created": r.created,
            "duplicate_of": r.duplicate_of,
            "message": r.message,
            "skipped": r.skipped,
        }
        for r in results
    ]


def add_dataset(services: Services, path: str | Path, name: str | None = None, fmt: str = "auto") -> dict[str, Any]:
    """Import one dataset file (the API's upload); see add_datasets for every option."""
    results = add_datasets(services, path, name, {"format": fmt})
    if len(results) != 1:
        raise ValueError(f"{Path(path).name} holds {len(results)} datasets; add it with `datasets add` instead")
    return results[0]


def delete_dataset(services: Services, dataset: str | int) -> dict[str, Any]:
    """Delete a dataset no queued or running run uses (finished runs keep their results)."""
    from backend.data import delete_dataset

    return delete_dataset(services.database, services.workspace, dataset)


def list_datasets(services: Services) -> list[dict[str, Any]]:
    from backend.data import dataset_summary, list_datasets

    return [dataset_summary(d) for d in list_datasets(services.database)]


def show_dataset(
    services: Services,
    dataset: str | int,
    rows: int = 5,
    split: str = "train",
    offset: int = 0,
    model: str = "",
    cutoff_len: int = 0,
) -> dict[str, Any]:
    """One dataset with a page of its rows; with `model`, token lengths under that model's tokenizer."""
    from backend.data import dataset_summary, find_dataset, preview
    from backend.data.preview import sample_rows
    from backend.data.stats import token_lengths

    ds = find_dataset(services.database, dataset)
    if split not in ds.splits:
        raise ValueError(f"dataset '{ds.name}' has no '{split}' split; it has {', '.join(ds.splits)}")
    out = {**dataset_summary(ds), "preview": preview(services.workspace, ds.id, offset, rows, split)}
    if model:
        cutoff = cutoff_len or RunConfig().cutoff_len
        data = sample_rows(services.workspace, ds.id, split)
        out["token_lengths"] = token_lengths(data, model, services.workspace.models_dir, cutoff)
    return out


def train(
    services: Services, settings: dict[str, Any], name: str = "", wait: bool = False, timeout: float | None = None
) -> dict[str, Any]:
    """Queue a run; with `wait`, return when it ends (supervising it here if no app is running)."""
    from backend.compress import distill_settings
    from backend.runs.queue import create_run

    settings = distill_settings(services.database, services.workspace, with_dataset_task(services, settings))
    run = create_run(services.database, services.workspace, RunConfig.from_dict(settings), name=name)
    if wait:
        _supervise_until(services, run.id, timeout)
    return show_run(services, run.id) if wait else _run(services, run.id)


def estimate(services: Services, settings: dict[str, Any], measure: bool = False) -> dict[str, Any]:
    """How long a run of these settings would train here: steps x seconds per step measured on this machine
    (by a run of the same shape, or a calibration). `measure`: calibrate when nothing was measured yet."""
    from backend.runs.estimate import calibrate, estimate

    cfg = RunConfig.from_dict(with_dataset_task(services, settings))
    if not cfg.dataset:
        raise ValueError("setting 'dataset' is missing: the estimate counts the steps over its rows")
    out = estimate(services.database, services.workspace, cfg)
    if measure and out["sec_per_step"] is None:
        out = calibrate(services.database, services.workspace, cfg)
    return out


def with_dataset_task(services: Services, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings whose task, when not given, is the dataset's (a text-classification dataset trains a
    classifier without --task); a dataset that does not exist is left for create_run to refuse."""
    if settings.get("task") or not settings.get("dataset"):
        return settings
    from backend.data import find_dataset

    try:
        return {**settings, "task": find_dataset(services.database, settings["dataset"]).task}
    except ValueError:
        return settings


def _supervise_until(services: Services, run_id: int, timeout: float | None) -> None:
    """Block until the run ends, supervising it here when no app (or `supervise`) is running."""
    from backend.runs.queue import get_run

    busy = lambda: not get_run(services.database, run_id).status.finished  # noqa: E731
    _supervise_while(services, busy, timeout, f"run {run_id}")


def _supervise_while(services: Services, busy: Callable[[], bool], timeout: float | None, what: str) -> None:
    """Wait while `busy()`, supervising here when no app (or `supervise`) is running."""
    from backend.runs.supervisor import Supervisor

    supervisor = Supervisor(services.database, services.workspace)
    mine = supervisor.acquire()
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while busy():
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not finish in {timeout:.0f} s")
            if mine:
                supervisor.tick()
            time.sleep(supervisor.tick_seconds if mine else 1.0)
    finally:
        if mine:
            supervisor.stop()


def list_runs(
    services: Services,
    status: str | None = None,
    *,
    task: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    search: str = "",
    sort: str = "newest",
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One page of runs (newest first by default), filtered and searched in the database."""
    from backend.runs.query import RunQuery, list_page, summary

    q = RunQuery(status or None, task or None, model or None, dataset or None, search or "", sort, limit, offset)
    page = list_page(services.database, q)
    return [summary(r, positions=page.positions) for r in page.runs]


def _run(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import get_run, summary

    return summary(get_run(services.database, run_id), database=services.database)


def show_run(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import get_run, summary

    run = get_run(services.database, run_id)
    return summary(run, services.workspace, detail=True, database=services.database)


def cancel_run(services: Services, run_id: int) -> dict[str, Any]:
    from backend.runs.queue import cancel_run

    cancel_run(services.database, run_id)
    return _run(services, run_id)


def resume_run(
    services: Services, run_id: int, wait: bool = False, timeout: float | None = None, as_new: bool = False
) -> dict[str, Any]:
    """Queue a stopped run again; it continues from its last checkpoint (its curve goes on from there).

    `as_new` queues a new run (parent_id = run_id) starting from a copy of that checkpoint instead.
    """
    from backend.runs.queue import resume_run

    run_id = resume_run(services.database, run_id, as_new=as_new, workspace=services.workspace).id
    if wait:
        _supervise_until(services, run_id, timeout)
    return show_run(services, run_id) if wait else _run(services, run_id)


def delete_run(services: Services, run_id: int) -> dict[str, Any]:
    """Delete a finished run with its files (refused while it is queued or running)."""
    from backend.runs.queue import delete_run

    return delete_run(services.database, services.workspace, run_id)


def set_priority(services: Services, run_id: int, priority: int) -> dict[str, Any]:
    """Change a queued run's priority (higher starts first); returns it with its queue position."""
    from backend.runs.queue import set_priority

    set_priority(services.database, run_id, priority)
    return _run(services, run_id)


def compare_runs(services: Services, run_ids: list[int]) -> dict[str, Any]:
    """2-5 runs side by side: settings that differ, final metrics, and every curve."""
    from backend.runs.query import compare

    return compare(services.database, run_ids)


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
        _supervise_while(services, lambda: is_live(services.database, study.id), timeout, f"search {study.id}")
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


def export(
    services: Services, run_id: int, fmt: str = "merged", out: str | None = None, push_to: str | None = None
) -> dict[str, Any]:
    """Write one export format of a completed run, verified against its model (backend.export.exporter)."""
    from backend.export.exporter import export_run

    return export_run(services.database, services.workspace, run_id, fmt, out=out, push_to=push_to)


def compress(services: Services, run_id: int, prune: str = "", wait: bool = False, timeout: float | None = None, **kw):
    """Prune a run into a measured new one (kw: compress_run's; `wait`: its recovery run); no `prune`: its variants."""
    from backend.compress import variant as v

    if not prune:
        return {"run_id": run_id, "variants": v.list_variants(services.database, services.workspace, run_id)}
    pruned, recovery = v.compress_run(services.database, services.workspace, run_id, prune, **kw)
    if recovery is not None and wait:
        _supervise_until(services, recovery, timeout)
        v.record_recovery(services.database, services.workspace, recovery, kw.get("tolerance", 0.02))
    return show_run(services, recovery if recovery and wait else pruned) | {"recovery_run": recovery}


def predict(
    services: Services,
    run_id: int,
    prompt: str = "",
    image: str | Path | bytes | None = None,
    dataset: str = "",
    split: str = "",
    out: str | None = None,
    max_new_tokens: int = GREEDY.max_new_tokens,
) -> dict[str, Any]:
    """A completed run's prediction: a chat reply or class probabilities for one prompt, top classes for an
    image, or a whole dataset split scored with the engine's metrics and written as CSV (`out` or
    workspace/predictions/). The input must suit the run's task; nothing is written on a refusal."""
    from backend.playground.predict import batch_predict, classify, run_task

    given = [name for name, v in (("--prompt", prompt), ("--image", image), ("--dataset", dataset)) if v]
    if len(given) != 1:
        why = "nothing" if not given else " and ".join(given)
        raise ValueError(f"give one of --prompt TEXT, --image FILE or --dataset D --split S (got {why})")
    task = run_task(services.database, run_id)
    if dataset:
        if not split:
            raise ValueError("--dataset needs --split (train, validation or test) naming the rows to predict")
        return batch_predict(services.database, services.workspace, run_id, dataset, split, out=out)
    if out:
        raise ValueError("--out names the CSV of a --dataset prediction; leave it out for one prompt or image")
    if task == "sft":
        if image:
            raise ValueError(f"run {run_id} is a chat (sft) run; give --prompt TEXT, not an image")
        return {"task": task, **chat(services, run_id, prompt, max_new_tokens)}
    return classify(services.database, services.workspace, run_id, text=prompt or None, image=image or None)


def chat(
    services: Services, run_id: int | str, prompt: str, max_new_tokens: int = GREEDY.max_new_tokens
) -> dict[str, Any]:
    """One greedy reply from a completed run's model, or (a name, folder or hub id) a base model; repeatable."""
    from backend.playground.chat import load, reply

    if not prompt.strip():
        raise ValueError("prompt is empty")
    model, tokenizer = load(services.database, services.workspace, run_id)
    gen = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    return {"run_id": run_id, "prompt": prompt, "reply": reply(model, tokenizer, prompt, gen)}


def models_pull(
    services: Services,
    model: str,
    revision: str = "",
    hub: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Download a hub model (in the background, like a run); with `wait`, return when it ends. A failed
    download is a ValueError with its reason (one line)."""
    from backend.models.downloads import LIVE, get_download
    from backend.models.library import pull, pulled

    out = pull(services.database, model, revision, hub)
    if not wait or out["download_id"] is None:
        return out
    download_id = out["download_id"]
    busy = lambda: get_download(services.database, download_id).status in LIVE  # noqa: E731
    _supervise_while(services, busy, timeout, f"download {download_id}")
    out = pulled(services.database, download_id)
    if out["status"] != "completed":
        raise ValueError(f"download {download_id} {out['status']}: {out['reason']}")
    return out


def models_list(services: Services) -> list[dict[str, Any]]:
    """Models on disk: the bundled ones and the hub caches' (with size)."""
    from backend.models.library import on_disk

    return on_disk(services.workspace.models_dir)


def models_rm(services: Services, model: str, hub: str | None = None) -> dict[str, Any]:
    """Delete a downloaded model (refused while it downloads or a queued/running run uses it)."""
    from backend.models.library import remove

    return remove(services.database, model, hub)


def models_downloads(services: Services) -> list[dict[str, Any]]:
    """Downloads, newest first, with bytes, speed and ETA."""
    from backend.models.downloads import list_downloads, summary

    return [summary(d) for d in list_downloads(services.database)]


def models_cancel(services: Services, download_id: int) -> dict[str, Any]:
    """Cancel a queued or running download (a later pull resumes what it fetched)."""
    from backend.models.downloads import cancel_download, summary

    return summary(cancel_download(services.database, download_id))


def models_fit(services: Services, settings: dict[str, Any]) -> dict[str, Any]:
    """Will a run with these settings fit? Estimated peak memory next to what the device has, and advice."""
    from backend.models.catalog import resolve_model
    from backend.models.fit import estimate_run

    settings = with_dataset_task(services, settings)
    cfg = RunConfig.from_dict({k: v for k, v in settings.items() if v is not None})
    folder = resolve_model(cfg.model, services.workspace.models_dir, cfg.trust_remote_code)
    return {"model": cfg.model, "task": cfg.task, "method": cfg.method, **estimate_run(cfg, folder)}


def base_chat_models(services: Services) -> list[str]:
    """Base models the Playground can chat with before training: bundled chat models and downloaded LMs."""
    from backend.models import chat_models

    return chat_models(services.workspace.models_dir)
