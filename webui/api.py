"""Gradio API endpoints that mirror the CLI: same actions, same JSON.

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    run = client.predict({"dataset": "identity-example", "max_steps": 10}, api_name="/train")
    client.predict(run["id"], api_name="/runs_show")

Errors reach the client as gradio_client exceptions carrying the same message as the CLI's. The one
difference from the CLI's JSON: a file or folder is under "location", not "path", because
gradio_client tries to download any object that has a "path".
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gradio as gr

from backend import actions
from backend.config import CHAT, GREEDY
from backend.services import Services


def register(services: Services) -> None:
    """Declare the endpoints inside the open gr.Blocks context."""

    def guarded(fn):
        @functools.wraps(fn)  # gradio reads the endpoint's parameters from the wrapped signature
        def call(*args, **kwargs):
            try:
                return _no_path_keys(fn(*args, **kwargs))
            except ValueError as e:
                raise gr.Error(str(e)) from None

        return call

    def datasets_list() -> list[dict[str, Any]]:
        """Every dataset with its row count and statistics, newest first."""
        return actions.list_datasets(services)

    def datasets_show(
        dataset: str, rows: int = 5, split: str = "train", offset: int = 0, model: str = "", cutoff_len: int = 0
    ) -> dict[str, Any]:
        """One dataset (name or id) with a page of rows; with `model`, token lengths under its tokenizer."""
        return actions.show_dataset(services, dataset, int(rows), split, int(offset), model, int(cutoff_len))

    def datasets_import(source: str, name: str = "", options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Import a hub id or a path under the app's data roots, with ImportOptions fields as `options`
        (format, task, text_column, label_column, val_ratio, test_ratio, seed, ...); one summary per dataset."""
        from backend.data.hub import is_hub_id
        from backend.data.options import check_server_path

        if Path(source).expanduser().exists() or not is_hub_id(source):
            check_server_path(source, services.workspace.root)
        return actions.add_datasets(services, source, name or None, options or {})

    def datasets_delete(dataset: str) -> dict[str, Any]:
        """Delete a dataset (name or id) and its files; refused while a queued or running run uses it."""
        return actions.delete_dataset(services, dataset)

    def train(settings: dict[str, Any]) -> dict[str, Any]:
        """Queue a run from RunConfig settings, e.g. {"dataset": "identity-example", "method": "lora"}."""
        return actions.train(services, settings)

    def estimate(settings: dict[str, Any], measure: bool = False) -> dict[str, Any]:
        """Steps x seconds per step measured here for a run of these settings; `measure`: calibrate if needed."""
        return actions.estimate(services, settings, bool(measure))

    def runs_list(
        status: str = "", search: str = "", sort: str = "newest", limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """A page of runs, newest first; `status` filters (queued, running, ...), `search` finds name/model/dataset."""
        page = {"search": search, "sort": sort, "limit": int(limit), "offset": int(offset)}
        return actions.list_runs(services, status or None, **page)

    def runs_show(run_id: int) -> dict[str, Any]:
        """One run with config, progress, metrics, artifacts and log tail."""
        return actions.show_run(services, int(run_id))

    def runs_cancel(run_id: int) -> dict[str, Any]:
        """Cancel a queued or running run."""
        return actions.cancel_run(services, int(run_id))

    def runs_resume(run_id: int, as_new: bool = False) -> dict[str, Any]:
        """Queue an interrupted, failed or cancelled run again from its last checkpoint (`as_new`: as a new run)."""
        return actions.resume_run(services, int(run_id), as_new=bool(as_new))

    def runs_delete(run_id: int) -> dict[str, Any]:
        """Delete a finished run with its files (refused while queued or running)."""
        return actions.delete_run(services, int(run_id))

    def runs_priority(run_id: int, priority: int) -> dict[str, Any]:
        """Change a queued run's priority (higher starts first)."""
        return actions.set_priority(services, int(run_id), int(priority))

    def runs_compare(run_ids: list[int]) -> dict[str, Any]:
        """2-5 runs side by side: differing settings, final metrics, curves."""
        return actions.compare_runs(services, [int(i) for i in run_ids])

    def export(run_id: int, format: str = "merged") -> dict[str, Any]:
        """Export a completed run (adapter or merged), verified; returns paths and checks."""
        return actions.export(services, int(run_id), format)

    def compress(run_id: int, prune: str = "", recover_steps: int = 0, tolerance: float = 0.02) -> dict[str, Any]:
        """Prune a completed run into a new run measured beside it (its recovery run queued when asked);
        without `prune`, the run and its compressed variants. As the CLI's `compress`, without --wait."""
        options = {"recover_steps": int(recover_steps), "tolerance": float(tolerance)}
        return actions.compress(services, int(run_id), prune, **options)

    def chat(
        run_id: int,
        prompt: str,
        max_new_tokens: int = GREEDY.max_new_tokens,
        system: str = "",
        temperature: float = 0.0,
        top_p: float = CHAT.top_p,
        top_k: int = CHAT.top_k,
        seed: int = -1,
    ) -> dict[str, Any]:
        """One reply from a completed run's model: greedy by default; with a temperature, sampled as in the
        Playground (the same seed, the same answer)."""
        sampling = {"temperature": float(temperature), "top_p": float(top_p), "top_k": int(top_k), "seed": int(seed)}
        return actions.chat(services, int(run_id), prompt, int(max_new_tokens), system, **sampling)

    def predict(run_id: int, prompt: str = "", image: str = "", dataset: str = "", split: str = "") -> dict[str, Any]:
        """A completed run's prediction, as `python -m backend.cli predict`: a reply or class probabilities for
        `prompt`, top classes for `image` (a path under the app's data roots), or a dataset split scored and
        written as CSV (its path under "csv")."""
        from backend.data.options import check_server_path

        if image:
            check_server_path(image, services.workspace.root)
        return actions.predict(services, int(run_id), prompt, image or None, dataset, split)

    def search(
        settings: dict[str, Any], space: dict[str, Any], options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a hyperparameter search, as `cli search`: RunConfig `settings` fixed for every trial, a `space`
        ({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": true}, ...}) and `options`
        (metric, direction, sampler: tpe|random|grid, trials, timeout_minutes, prune, parallel, seed; executor:
        local|ray, with ray workers, worker_cpus, worker_gpus and parallel 0 for as many as the cluster holds)."""
        return actions.search(services, settings, space, options or {})

    def models_pull(model: str, revision: str = "", hub: str = "") -> dict[str, Any]:
        """Download a hub model (org/name[@revision]) in the background, as `cli models pull`: id, revision,
        path, size_mb, status, and the download's progress (follow it with models_downloads)."""
        return actions.models_pull(services, model, revision, hub or None)

    def models_list() -> list[dict[str, Any]]:
        """Models on disk: bundled and downloaded, with size."""
        return actions.models_list(services)

    def models_rm(model: str) -> dict[str, Any]:
        """Delete a downloaded model (refused while it downloads or a queued/running run uses it)."""
        return actions.models_rm(services, model)

    def models_downloads() -> list[dict[str, Any]]:
        """Downloads, newest first: status, bytes, speed, ETA."""
        return actions.models_downloads(services)

    def models_cancel(download_id: int) -> dict[str, Any]:
        """Cancel a queued or running download (the next pull keeps the whole files)."""
        return actions.models_cancel(services, int(download_id))

    def models_fit(settings: dict[str, Any]) -> dict[str, Any]:
        """Will a run with these RunConfig settings fit: estimate_mb, available_mb, fits, advice."""
        return actions.models_fit(services, settings)

    def chat_base(model: str, prompt: str, max_new_tokens: int = GREEDY.max_new_tokens) -> dict[str, Any]:
        """One greedy reply from a base model on disk (a bundled name or a downloaded hub id), before training."""
        from backend.models import parse_hub_id

        if model not in actions.base_chat_models(services) and parse_hub_id(model) is None:
            raise ValueError(f"model '{model}' is not a bundled chat model or a hub id; see models_list")
        return actions.chat(services, model, prompt, int(max_new_tokens))

    def search_show(study_id: int) -> dict[str, Any]:
        """A search with its trials (run id, params, value, state), best params and value."""
        return actions.show_search(services, int(study_id))

    def search_stop(study_id: int) -> dict[str, Any]:
        """Stop a search: no new trials; its running trial is cancelled."""
        return actions.stop_search(services, int(study_id))

    def search_list() -> list[dict[str, Any]]:
        """Every search, newest first."""
        return actions.list_searches(services)

    def evaluate(
        models: list[str],
        suites: list[str],
        metric: str = "",
        fewshot: int = 0,
        limit: int = 0,
        judge: str = "",
        judge_mode: str = "pairwise",
        rubric: str = "",
        human: str = "",
        choices: str = "letters",
        executor: str = "local",
        worker_cpus: float = 0,
        worker_gpus: float = 0,
    ) -> dict[str, Any]:
        """Queue an evaluation of each model (base:NAME, run:ID or a folder) on each suite (a shipped name or
        a file); `judge` (a model) also grades the answers: judge_mode pairwise, rubric (1-5) or pass, with
        `human` a file of human-labelled samples for its agreement; `choices`: multiple choice as letters
        (MMLU's format) or cloze (each option's text scored); `executor` ray: a job on the workspace's Ray
        cluster with worker_cpus / worker_gpus (0: the defaults, 1 CPU and no GPU). Follow it with evaluate_show."""
        grader = {"model": judge, "mode": judge_mode, "rubric": rubric, "human": human} if judge else None
        cluster = {"worker_cpus": worker_cpus or None, "worker_gpus": worker_gpus or None}
        return actions.evaluate(
            services, list(models), list(suites), metric or None, int(fewshot), int(limit) or None,
            judge=grader, choices=choices or "letters", executor=executor or "local", cluster=cluster,
        )  # fmt: skip

    def evaluate_show(evaluation_id: int, disagreements_only: bool = False) -> dict[str, Any]:
        """An evaluation: status, progress, results with 95% CI, differences from the first model, samples
        (only those the models score differently, with disagreements_only)."""
        return actions.evaluation_show(services, int(evaluation_id), bool(disagreements_only))

    def evaluate_list() -> list[dict[str, Any]]:
        """Every evaluation, newest first."""
        return actions.evaluation_list(services)

    def evaluate_cancel(evaluation_id: int) -> dict[str, Any]:
        """Stop a queued or running evaluation; results so far stay."""
        return actions.evaluation_cancel(services, int(evaluation_id))

    endpoints = (datasets_list, datasets_show, train, runs_list, runs_show, runs_cancel, runs_resume, export, chat)
    endpoints += (models_pull, models_list, models_rm, models_downloads, models_cancel, models_fit, chat_base)
    endpoints += (search, search_show, search_stop, search_list, compress)
    endpoints += (runs_delete, runs_priority, runs_compare, datasets_delete, datasets_import, predict)
    endpoints += (estimate,)
    endpoints += (evaluate, evaluate_show, evaluate_list, evaluate_cancel)
    for fn in endpoints:
        gr.api(guarded(fn), api_name=fn.__name__)


def register_demo(services: Services, demo_run: int) -> None:
    """A demo's only endpoint: /chat, and only with the demo's run."""

    def chat(run_id: int, prompt: str, max_new_tokens: int = GREEDY.max_new_tokens) -> dict[str, Any]:
        """One greedy reply from the demo's model (run_id must be the demo's run)."""
        if int(run_id) != demo_run:
            raise gr.Error(f"this demo serves run {demo_run} only")
        try:
            return actions.chat(services, demo_run, prompt, min(int(max_new_tokens), DEMO_MAX_NEW_TOKENS))
        except ValueError as e:
            raise gr.Error(str(e)) from None

    gr.api(chat, api_name="chat")


DEMO_MAX_NEW_TOKENS = 512  # a public demo bounds the work one request can ask for


def _no_path_keys(value: Any) -> Any:
    """gradio_client downloads any object with a "path" key as a file; on the API, folders are "location"."""
    if isinstance(value, dict):
        return {("location" if k == "path" else k): _no_path_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_path_keys(v) for v in value]
    return value
