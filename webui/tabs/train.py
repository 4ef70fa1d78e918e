"""Train tab: the landing page. Model and the identity example are preselected; Start queues a run."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from backend.catalog import model_choices
from backend.config import DEFAULT_LR, RunConfig
from backend.data import list_datasets
from backend.runs import create_run
from backend.services import IDENTITY_EXAMPLE, Services
from webui.feedback import refuse
from webui.tabs.runs import run_choices

QUICK_START = """<div class="tb-quick">

**Quick start.** The bundled **SmolLM2-135M-Instruct** and the **identity** example (it teaches the
model a new name, *Tuna*, in English and 中文) are already selected, with defaults that work on a CPU.
Press **Start training**, watch the curve in **Runs** (about 3 minutes on 2 CPU cores), then ask the
result *"Who are you?"* in **Playground**.
</div>"""

DEFAULTS = RunConfig()


@dataclass
class TrainUI:
    model: gr.Dropdown
    dataset: gr.Dropdown
    method: gr.Radio
    epochs: gr.Number
    max_steps: gr.Number
    learning_rate: gr.Number
    batch_size: gr.Number
    grad_accum: gr.Number
    cutoff_len: gr.Number
    lora_rank: gr.Number
    lora_alpha: gr.Number
    start: gr.Button
    status: gr.Markdown


def build(services: Services) -> TrainUI:
    gr.Markdown(QUICK_START)
    with gr.Row():
        model = gr.Dropdown(
            model_choices(),
            value=DEFAULTS.model,
            label="Model",
            info="Bundled models work offline; you can also type a local model folder.",
            allow_custom_value=True,
        )
        dataset = gr.Dropdown(
            _dataset_names(services), value=IDENTITY_EXAMPLE, label="Dataset", info="Add more in Datasets."
        )
        method = gr.Radio(
            [("LoRA (fast, small adapter)", "lora"), ("Full (all weights)", "full")],
            value=DEFAULTS.method,
            label="Method",
        )
    with gr.Accordion("Hyperparameters (the defaults work; change them if you like)", open=False):
        with gr.Row():
            epochs = _number("epochs", "Epochs")
            max_steps = _number("max_steps", "Max steps", precision=0)
            learning_rate = _number("learning_rate", "Learning rate (0 = auto)")
            batch_size = _number("batch_size", "Batch size", precision=0)
        with gr.Row():
            grad_accum = _number("grad_accum", "Gradient accumulation", precision=0)
            cutoff_len = _number("cutoff_len", "Cutoff length (tokens)", precision=0)
            lora_rank = _number("lora_rank", "LoRA rank", precision=0)
            lora_alpha = _number("lora_alpha", "LoRA alpha", precision=0)
    start = gr.Button("Start training", variant="primary", size="lg")
    status = gr.Markdown()
    return TrainUI(
        model,
        dataset,
        method,
        epochs,
        max_steps,
        learning_rate,
        batch_size,
        grad_accum,
        cutoff_len,
        lora_rank,
        lora_alpha,
        start,
        status,
    )


def _number(name: str, label: str, precision: int | None = None) -> gr.Number:
    info = RunConfig.help(name)
    if name == "learning_rate":
        info = f"auto: {DEFAULT_LR['lora']:g} for LoRA, {DEFAULT_LR['full']:g} for full."
    return gr.Number(getattr(DEFAULTS, name), label=label, info=info, precision=precision)


def _dataset_names(services: Services) -> list[str]:
    return [d.name for d in list_datasets(services.database)]


def refresh_choices(services: Services):
    def refresh(current: str | None = None):
        names = _dataset_names(services)
        if current in names:  # leave the value alone: the user may have picked another meanwhile
            return gr.Dropdown(choices=names)
        return gr.Dropdown(choices=names, value=IDENTITY_EXAMPLE if IDENTITY_EXAMPLE in names else None)

    return refresh


def wire(services: Services, ui: TrainUI, tabs: gr.Tabs, runs_ui) -> None:
    def start(
        model: str,
        dataset: str,
        method: str,
        epochs: float,
        max_steps: int,
        learning_rate: float,
        batch_size: int,
        grad_accum: int,
        cutoff_len: int,
        lora_rank: int,
        lora_alpha: int,
    ):
        try:
            cfg = RunConfig.from_dict(
                {
                    "model": model,
                    "dataset": dataset or "",
                    "method": method,
                    "epochs": epochs,
                    "max_steps": max_steps,
                    "learning_rate": learning_rate,
                    "batch_size": batch_size,
                    "grad_accum": grad_accum,
                    "cutoff_len": cutoff_len,
                    "lora_rank": lora_rank,
                    "lora_alpha": lora_alpha,
                }
            )
            run = create_run(services.database, services.workspace, cfg)
        except ValueError as e:
            return refuse(str(e), 3)
        gr.Info(f"Run {run.id} queued; it starts in a background process.")
        return (
            f"Run **{run.id}** queued. Follow it in **Runs**.",
            gr.Tabs(selected="runs"),
            gr.Dropdown(choices=run_choices(services), value=run.id),
        )

    inputs = [
        ui.model,
        ui.dataset,
        ui.method,
        ui.epochs,
        ui.max_steps,
        ui.learning_rate,
        ui.batch_size,
        ui.grad_accum,
        ui.cutoff_len,
        ui.lora_rank,
        ui.lora_alpha,
    ]
    ui.start.click(start, inputs, [ui.status, tabs, runs_ui.run], api_visibility="private")
