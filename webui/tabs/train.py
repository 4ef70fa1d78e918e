"""Train tab: the landing page. Pick a task, model, dataset and method; Start queues a run.

Every setting is a widget built from its RunConfig field (default, choices, hint), and only the
settings that apply to the chosen task, method and optimizer are shown (`RunConfig.applies`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr

from backend import actions
from backend.alignment import base_task, run_task
from backend.config import CHOICES, DEFAULT_MODELS, TASK_DEFAULTS, RunConfig
from backend.data import list_datasets
from backend.models.catalog import task_models
from backend.models.fit import check_fit, estimate_for
from backend.runs import ray_jobs
from backend.runs.estimate import calibrate, estimate
from backend.runs.queue import get_run
from backend.runs.slots import gpu_count
from backend.services import IDENTITY_EXAMPLE, Services
from webui.choices import (
    TASKS,
    cluster_worker_inputs,
    dataset_names,
    method_choices,
    ray_cluster,
    refresh_choices,
    run_choices,
)
from webui.feedback import inform, refuse, warn
from webui.i18n import DEFAULT, L, messages, t

DEFAULTS = RunConfig()

# The settings each part of the form holds, in order; everything else stays at its default.
METHOD_SETTINGS = [
    "lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "lora_dora", "lora_rslora", "qlora_bits",
    "freeze_layers", "unfreeze_every", "unfreeze_unit",
]  # fmt: skip
HYPER_ROWS = [
    ["epochs", "max_steps", "min_steps", "learning_rate", "batch_size"],
    ["grad_accum", "cutoff_len", "image_size", "warmup_ratio", "scheduler"],
    ["optimizer", "momentum", "weight_decay", "max_grad_norm"],
    ["val_ratio", "eval_steps", "early_stopping_patience", "early_stopping_metric", "eval_samples", "eval_suites"],
    ["train_on_prompt", "packing", "chat_template", "image_flip", "grad_checkpointing"],
    ["logging_steps", "save_steps", "save_total_limit", "seed", "report_to"],
]
HARDWARE = ["precision", "nproc", "trust_remote_code"]
# learn from a completed run (a teacher)
DISTILL = ["teacher", "temperature", "alpha", "layers_from_teacher", "sequence_level"]
ALIGNMENT = ["from_run", "beta", "loss_type", "num_generations", "max_completion_len", "reward"]  # dpo ... grpo
# re-estimate on change
TIMING_SETTINGS = ["epochs", "max_steps", "min_steps", "batch_size", "cutoff_len", "lora_rank", "precision"]
SETTINGS = [*METHOD_SETTINGS, *(n for row in HYPER_ROWS for n in row), *ALIGNMENT, *DISTILL, *HARDWARE]


@dataclass
class TrainUI:
    task: gr.Dropdown
    model: gr.Dropdown
    dataset: gr.Dropdown
    method: gr.Radio
    settings: dict[str, gr.components.Component]  # RunConfig field name -> its widget, in SETTINGS order
    method_group: gr.Group
    gpus: gr.CheckboxGroup
    start: gr.Button
    status: gr.Markdown
    estimate: gr.Button  # how long the run takes here: steps x seconds per step measured on this machine
    estimate_text: gr.Markdown
    quick_start: gr.Markdown  # about the chat example: shown for the chat task only
    executor: gr.Radio | None = None  # where the workers start: this machine, a Slurm cluster's nodes, a Ray cluster
    ray_row: gr.Row | None = None  # a Ray run's workers, resources per worker, and the cluster's free CPUs/GPUs
    ray_settings: tuple = ()
    cluster_free: gr.Markdown | None = None

    def config_widgets(self) -> dict[str, gr.components.Component]:
        """Every widget named after a RunConfig field (for filling the form from a run's config)."""
        return {"task": self.task, "model": self.model, "dataset": self.dataset, "method": self.method, **self.settings}


def visible(name: str, task: str, method: str, optimizer: str) -> bool:
    if name == "nproc" and gpu_count() > 0:  # with GPUs, processes follow the ticked GPUs
        return False
    return RunConfig.applies(name, task=task, method=method, optimizer=optimizer)


def build(services: Services) -> TrainUI:
    quick_start = gr.Markdown(L("train.quick_start"))
    with gr.Row():
        task = gr.Dropdown(
            [(L(label), value) for label, value in TASKS],
            value=DEFAULTS.task,
            label=L("train.task"),
            info=L("train.task_info"),
        )
        model = gr.Dropdown(
            task_models(DEFAULTS.task),
            value=DEFAULTS.model,
            label=L("train.model"),
            info=L("train.model_info"),
            allow_custom_value=True,
        )
        dataset = gr.Dropdown(
            dataset_names(services), value=IDENTITY_EXAMPLE, label=L("train.dataset"), info=L("train.dataset_info")
        )
    method = gr.Radio(method_choices(), value=DEFAULTS.method, label=L("train.method"), info=L("train.method_info"))
    settings: dict[str, gr.components.Component] = {}
    with gr.Group(visible=_has_method_settings(DEFAULTS.method)) as method_group, gr.Row():
        for name in METHOD_SETTINGS:
            settings[name] = _widget(name)
    with gr.Accordion(L("train.hyperparameters"), open=False):
        for row in HYPER_ROWS:
            with gr.Row():
                for name in row:
                    settings[name] = _widget(name)
    gpus = gr.CheckboxGroup(
        [f"cuda:{i}" for i in range(gpu_count())],
        label=L("train.gpus"),
        info=L("train.gpus_info"),
        visible=gpu_count() > 0,
    )
    with gr.Accordion(L("train.alignment"), open=False), gr.Row():  # its settings show for dpo ... grpo
        for name in ALIGNMENT:
            settings[name] = _widget(name)
    with gr.Accordion(L("train.distillation"), open=False), gr.Row():
        for name in DISTILL:
            settings[name] = _widget(name)
    with gr.Accordion(L("train.hardware"), open=False):
        with gr.Row():
            for name in HARDWARE:
                settings[name] = _widget(name)
        cluster = ray_cluster(services)  # hidden without Ray
        executor = gr.Radio(
            [(L("train.executor_local"), "local"), (L("train.executor_slurm"), "slurm")]
            + ([(L("train.executor_ray"), "ray")] if cluster else []),
            value="local",
            label=L("train.executor"),
            info=L("train.executor_info"),
        )
        with gr.Row(visible=False) as ray_row:
            ray_settings = cluster_worker_inputs()
            cluster_free = gr.Markdown()
    with gr.Row():
        start = gr.Button(L("train.start"), variant="primary", size="lg", scale=3)
        estimate = gr.Button(L("train.estimate"), size="lg", scale=1)
    estimate_text = gr.Markdown()
    status = gr.Markdown()
    ordered = {n: settings[n] for n in SETTINGS}
    return TrainUI(
        task,
        model,
        dataset,
        method,
        ordered,
        method_group,
        gpus,
        start,
        status,
        estimate,
        estimate_text,
        quick_start,
        executor=executor,
        ray_row=ray_row,
        ray_settings=ray_settings,
        cluster_free=cluster_free,
    )


def with_labels(message: str) -> str:
    """A backend message names settings as the CLI does ('max_steps'); add the label this form shows."""

    def label(match: re.Match) -> str:
        key = f"train.field.{match.group(1)}"
        return f"{match.group(0)} ({t(key)})" if key in messages(DEFAULT) else match.group(0)

    return re.sub(r"setting '(\w+)'", label, message)


def _has_method_settings(method: str) -> bool:
    return any(RunConfig.applies(n, method=method) and RunConfig.where(n) for n in METHOD_SETTINGS)


def _widget(name: str) -> gr.components.Component:
    """A widget for one RunConfig field: its default, its choices, a label and a one-line hint."""
    default = getattr(DEFAULTS, name)
    label = L(f"train.field.{name}")
    info = t("train.lr_auto", "en", lr=DEFAULTS.lr) if name == "learning_rate" else L(f"train.hint.{name}")
    shown = visible(name, DEFAULTS.task, DEFAULTS.method, DEFAULTS.optimizer)
    if isinstance(default, bool):
        return gr.Checkbox(default, label=label, info=info, visible=shown)
    if name in CHOICES:
        return gr.Dropdown(list(CHOICES[name]), value=default, label=label, info=info, visible=shown)
    if isinstance(default, int | float):
        return gr.Number(
            default, label=label, info=info, precision=0 if isinstance(default, int) else None, visible=shown
        )
    return gr.Textbox(default, label=label, info=info, visible=shown, lines=3 if name == "reward" else 1)


def wire(services: Services, ui: TrainUI, tabs: gr.Tabs, runs_ui, app: gr.Blocks) -> None:
    names = list(ui.settings)
    widgets = list(ui.settings.values())

    def show(task: str, method: str, optimizer: str):
        """Only the settings that apply (and the chat quick start for chat); the learning-rate hint names the
        automatic value."""
        lr = RunConfig.from_dict({"task": task, "method": method}).lr
        updates = [gr.update(visible=visible(n, task, method, optimizer)) for n in names]
        updates[names.index("learning_rate")] = gr.update(visible=True, info=t("train.lr_auto", lr=lr))
        return [gr.Markdown(visible=task == "sft"), gr.Group(visible=_has_method_settings(method)), *updates]

    def switch_task(task: str, method: str, optimizer: str):
        """A new task brings its own models and defaults (e.g. full fine-tuning of a small classifier)."""
        task_defaults = TASK_DEFAULTS.get(task, {})
        new_method = task_defaults.get("method", DEFAULTS.method)
        values = [gr.update(value=task_defaults.get(n, getattr(DEFAULTS, n))) for n in names]
        quick, group, *shown = show(task, new_method, optimizer)
        merged = [{**v, **s} for v, s in zip(values, shown, strict=True)]
        models = task_models(base_task(task))  # preference and RL tasks tune chat models
        default_model = DEFAULT_MODELS.get(base_task(task), models[0] if models else None)
        datasets = refresh_choices(services, every_task=True)(None, task)
        return [
            gr.Dropdown(choices=models, value=default_model),
            datasets,
            gr.Radio(value=new_method),
            quick,
            group,
            *merged,
        ]

    def follow_dataset(dataset: str | None, task: str, method: str, optimizer: str):
        """A dataset of another task switches the task (with its models and defaults), as the CLI does."""
        own = next((d.task for d in list_datasets(services.database) if d.name == dataset), task)
        own = run_task(own, task)  # preference data trains dpo (or orpo, reward), prompts grpo ...
        if own == task:
            return [gr.skip()] * (6 + len(widgets))
        model, _, *rest = switch_task(own, method, optimizer)
        return [gr.Dropdown(value=own), model, gr.Dropdown(value=dataset), *rest]

    ui.dataset.input(
        follow_dataset,
        [ui.dataset, ui.task, ui.method, ui.settings["optimizer"]],
        [ui.task, ui.model, ui.dataset, ui.method, ui.quick_start, ui.method_group, *widgets],
        api_visibility="private",
    )
    ui.task.input(
        switch_task,
        [ui.task, ui.method, ui.settings["optimizer"]],
        [ui.model, ui.dataset, ui.method, ui.quick_start, ui.method_group, *widgets],
        api_visibility="private",
    )
    # .change also fires when a run's settings are cloned into the form: visibility only, values kept.
    shown_by = [ui.task, ui.method, ui.settings["optimizer"]]
    for trigger in shown_by:
        trigger.change(show, shown_by, [ui.quick_start, ui.method_group, *widgets], api_visibility="private")
    # and once when the page opens: the learning-rate hint (it names a number) in the page's language
    shown = [ui.quick_start, ui.method_group, *widgets]
    app.load(show, shown_by, shown, api_visibility="private", show_progress="hidden")

    def form_settings(task: str, model: str, dataset: str, method: str, gpus: list[str], values) -> dict:
        chosen = dict(zip(names, values, strict=True))
        if gpus:
            chosen["devices"] = "cuda:" + ",".join(g.split(":")[1] for g in sorted(gpus))
        return {**chosen, "task": task, "model": model, "dataset": dataset or "", "method": method}

    def form_config(task: str, model: str, dataset: str, method: str, gpus: list[str], values) -> RunConfig:
        return RunConfig.from_dict(form_settings(task, model, dataset, method, gpus, values))

    def where(executor: str):
        """A Ray run's settings, and the cluster's free CPUs/GPUs, show when the run goes to the cluster."""
        if executor != "ray":
            return gr.Row(visible=False), ""
        address = ray_jobs.configured_address(services.workspace) or ""
        free = ray_jobs.cluster_resources(address) if address else None
        if free is None:
            return gr.Row(visible=True), t("train.cluster_silent", address=address)
        return gr.Row(visible=True), t("train.cluster_free", address=address, **{k: f"{v:g}" for k, v in free.items()})

    ui.executor.change(where, [ui.executor], [ui.ray_row, ui.cluster_free], api_visibility="private")

    def start(executor: str, workers, worker_cpus, worker_gpus, task: str, model: str, dataset: str, method: str,
              gpus: list[str], *values):  # fmt: skip
        try:  # as the CLI and the API queue it (a teacher run makes it a distillation, checked here)
            settings = {**form_settings(task, model, dataset, method, gpus, values), "executor": executor}
            if executor == "ray":
                settings.update(workers=int(workers or 1), worker_cpus=worker_cpus, worker_gpus=worker_gpus)
            run = get_run(services.database, actions.train(services, settings)["id"])
            cfg = RunConfig.from_dict(run.config)
        except ValueError as e:
            return refuse(with_labels(str(e)), 3)
        inform(t("train.queued", run_id=run.id))
        if cfg.trust_remote_code:
            warn(t("train.remote_code_on", run_id=run.id))
        longest = next((d.stats or {} for d in list_datasets(services.database) if d.name == cfg.dataset), {})
        fit = check_fit(cfg, services.workspace.models_dir, longest.get("max_chars"))  # create_run checked it
        need = (
            {"need": fit["estimate_mb"] / 1024, "device": fit["device"], "free": fit["available_mb"] / 1024}
            if fit
            else {}
        )
        return (
            t("train.queued_status", run_id=run.id) + (" " + t("train.fit", **need) if fit else ""),
            gr.Tabs(selected="runs"),
            gr.Dropdown(choices=run_choices(services), value=run.id),
        )

    inputs = [ui.task, ui.model, ui.dataset, ui.method, ui.gpus, *widgets]
    ui.start.click(
        start, [ui.executor, *ui.ray_settings, *inputs], [ui.status, tabs, runs_ui.run], api_visibility="private"
    )

    def time_it(measure: bool, task: str, model: str, dataset: str, method: str, gpus: list[str], *values):
        """Steps x seconds per step measured here; with `measure`, a few real steps are timed when nothing was."""
        try:
            cfg = form_config(task, model, dataset, method, gpus, values)
            if not cfg.dataset:
                return ""
            out = estimate(services.database, services.workspace, cfg)
            if measure and out["sec_per_step"] is None:
                out = calibrate(services.database, services.workspace, cfg)
            longest = next((d.stats or {} for d in list_datasets(services.database) if d.name == cfg.dataset), {})
            memory = memory_text(estimate_for(cfg, services.workspace.models_dir, longest.get("max_chars")))
        except ValueError as e:
            return refuse(with_labels(str(e)), 1) if measure else ""
        return estimate_text(out) + memory

    ui.estimate.click(lambda *v: time_it(True, *v), inputs, [ui.estimate_text], api_visibility="private")
    # What was measured already shows at once, and follows the settings that change a run's time.
    timing = [ui.task, ui.model, ui.dataset, ui.method, *(ui.settings[n] for n in TIMING_SETTINGS)]
    for trigger in [app, *timing]:
        listen = trigger.load if trigger is app else trigger.change
        listen(
            lambda *v: time_it(False, *v), inputs, [ui.estimate_text], api_visibility="private", show_progress="hidden"
        )


def memory_text(fit: dict | None) -> str:
    """'Memory: needs about 2.3 GB; cpu has 18.1 GB free.', or why it will not fit and what to change."""
    if fit is None:
        return ""
    if not fit["fits"]:
        return "\n\n" + t("train.fit_no", advice=fit["advice"])
    return "\n\n" + t(
        "train.fit", need=fit["estimate_mb"] / 1024, device=fit["device"], free=fit["available_mb"] / 1024
    )


def estimate_text(out: dict) -> str:
    """'About 8 min here: 60 steps x 8.4 s per step (measured by run 3)', or how to measure it."""
    if out["seconds"] is None:
        return t("train.estimate_unmeasured", steps=out["steps"])
    seconds = out["seconds"]
    took = t("train.seconds", n=round(seconds)) if seconds < 90 else t("train.minutes", n=round(seconds / 60))
    source = out["measured_by"]
    by = t("train.by_calibration") if source == "calibration" else t("train.by_run", run=source.split()[-1])
    return t("train.estimate_done", took=took, steps=out["steps"], sec=out["sec_per_step"], by=by)
