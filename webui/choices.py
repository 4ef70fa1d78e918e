"""Choice lists and form values that several tabs show: tasks, methods, datasets, runs, and a run's settings
as Train form values (Clone to Train, Use best in Train). Tabs import these from here, never from each other."""

from __future__ import annotations

import importlib.util
from typing import Any

import gradio as gr

from backend.alignment import CHAT_TASKS
from backend.config import RunConfig
from backend.data import list_datasets
from backend.models.catalog import task_models
from backend.runs.queue import get_run, list_runs
from backend.runs.slots import gpu_count
from backend.services import IDENTITY_EXAMPLE, Services
from webui.i18n import L

TASKS = [
    ("train.task_sft", "sft"),
    ("train.task_text", "text-classification"),
    ("train.task_image", "image-classification"),
    ("train.task_dpo", "dpo"),
    ("train.task_orpo", "orpo"),
    ("train.task_kto", "kto"),
    ("train.task_reward", "reward"),
    ("train.task_grpo", "grpo"),
]
METHODS = ["lora", "full", "freeze", "gradual", "qlora"]


def qlora_available() -> bool:
    return gpu_count() > 0 and importlib.util.find_spec("bitsandbytes") is not None


def method_choices() -> list[tuple[gr.i18n.I18nData, str]]:
    return [(L(f"train.method_{m}"), m) for m in METHODS if m != "qlora" or qlora_available()]


def dataset_names(services: Services, task: str | None = None) -> list[str]:
    """Datasets for `task` (all when None), newest first."""
    return [d.name for d in list_datasets(services.database) if task is None or d.task == task]


def refresh_choices(services: Services, every_task: bool = False):
    """A dataset dropdown's refresher: the task's datasets, or (`every_task`, the Train tab, whose task
    follows the dataset chosen) every dataset with the task's first; a new value is one of the task's."""

    def refresh(current: str | None = None, task: str | None = None):
        own = dataset_names(services, task)
        names = own + [n for n in dataset_names(services) if n not in own] if every_task else own
        if current in names:  # leave the value alone: the user may have picked another meanwhile
            return gr.Dropdown(choices=names)
        first = IDENTITY_EXAMPLE if IDENTITY_EXAMPLE in own else (own[0] if own else None)
        return gr.Dropdown(choices=names, value=first)

    return refresh


def run_choices(services: Services) -> list[tuple[str, int]]:
    return [(f"#{r.id} {r.name}", r.id) for r in list_runs(services.database, limit=100)]


def completed_runs(
    services: Services,
    current: int | str | None = None,
    task: str | None = None,
    shown: list[int] | None = None,
    bases: list[tuple[str, str]] = (),
) -> tuple[gr.Dropdown, list[int]]:
    """The run dropdown of Playground (chat runs) and Export (all): completed runs, newest first, and their ids
    (what the page now shows). A run that completed since the list was last `shown` is selected (the one a
    person comes for, whatever order runs finish in); otherwise the choice is kept, as it may be the person's.
    `bases` (label, model name) follow the runs: the Playground chats with base models too."""
    tasks = CHAT_TASKS if task == "sft" else (task,)  # chat: SFT runs and the DPO/GRPO ... policies tuned after
    runs = [r for one in tasks for r in list_runs(services.database, status="completed", task=one)]
    choices = [(f"#{r.id} {r.name}", r.id) for r in sorted(runs, key=lambda r: r.id, reverse=True)]
    ids = [run_id for _, run_id in choices]
    new = [run_id for run_id in ids if shown is not None and run_id not in shown]
    choices += list(bases)
    if current in [value for _, value in choices] and not new:
        return gr.Dropdown(choices=choices), ids
    return gr.Dropdown(choices=choices, value=(new or ids or [value for _, value in bases] or [None])[0]), ids


def form_values(services: Services, run_id: int, names: list[str]) -> list[Any]:
    """A run's settings as values (or updates) for the Train widgets named `names` (RunConfig field names)."""
    config = get_run(services.database, run_id).config or {}
    task = config.get("task", "sft")
    datasets = dataset_names(services, task)  # the Train lists for the run's task, not the form's current one
    lists = {
        "model": gr.Dropdown(choices=task_models(task), value=config.get("model")),
        "dataset": gr.Dropdown(
            choices=datasets, value=config.get("dataset") if config.get("dataset") in datasets else None
        ),
    }
    # A run records the rate it trained with; its method's default goes back as 0 (auto), so switching the
    # method after cloning brings that method's default instead of carrying this one over.
    default_lr = RunConfig.from_dict({"task": task, "method": config.get("method", "lora")}).lr
    if config.get("learning_rate") == default_lr:
        lists["learning_rate"] = 0.0
    return [lists.get(name, config[name]) if name in config else gr.skip() for name in names]


def ray_cluster(services: Services) -> bool:
    """Whether a Ray cluster is configured for this workspace (Ray installed): the tabs hide the cluster's
    choices without one."""
    from backend.runs import ray_jobs

    return bool(ray_jobs.installed() and ray_jobs.configured_address(services.workspace))


def cluster_worker_inputs() -> tuple[gr.Number, gr.Number, gr.Number]:
    """A ray run's workers and the CPUs and GPUs of each (Train and Search, shown when the cluster is chosen)."""
    return (
        gr.Number(1, precision=0, minimum=1, label=L("train.workers")),
        gr.Number(1, minimum=0.1, label=L("train.worker_cpus")),
        gr.Number(0, minimum=0, label=L("train.worker_gpus")),
    )
