"""Runs tab: every run, filtered and paged in the database; the open run live (curves, log, config,
results, files, hardware) with cancel, resume, priority, clone and delete; Compare 2-5 runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from backend import actions
from backend.runs.query import SORTS, RunQuery, curve_names, curves, distinct_values, list_page, summary
from backend.runs.queue import get_run, list_runs
from backend.services import Services
from webui.choices import form_values, run_choices
from webui.feedback import inform, refuse
from webui.i18n import L, t
from webui.tabs import runs_compare
from webui.tabs import runs_views as views

REFRESH_SECONDS = 2.0
PAGE_SIZES = [25, 50, 100]
STATUSES = ["queued", "running", "completed", "failed", "cancelled", "interrupted"]
CANCELLABLE = ("queued", "running")
RESUMABLE = ("interrupted", "failed", "cancelled")


@dataclass
class RunsUI:
    status: gr.Dropdown
    task: gr.Dropdown
    model: gr.Dropdown
    dataset: gr.Dropdown
    search: gr.Textbox
    sort: gr.Dropdown
    table: gr.Dataframe
    prev: gr.Button
    page: gr.Number
    next: gr.Button
    page_size: gr.Dropdown
    page_info: gr.Markdown
    run: gr.Dropdown
    header: gr.Markdown
    progress: gr.HTML
    cancel: gr.Button
    resume: gr.Button
    resume_new: gr.Button
    clone: gr.Button
    delete: gr.Button
    confirm_delete: gr.Button
    priority: gr.Number
    set_priority: gr.Button
    loss: gr.LinePlot
    metric: gr.Dropdown
    other: gr.LinePlot
    log: gr.Textbox
    config: gr.JSON
    results: gr.Markdown
    confusion: gr.HTML
    artifacts: gr.Dataframe
    hardware: gr.Markdown
    timer: gr.Timer
    compare: runs_compare.CompareUI


def build(services: Services) -> RunsUI:
    with gr.Tabs():
        with gr.Tab(L("runs.tab_all"), id="runs-all"):
            with gr.Row():
                statuses = [(L("runs.all"), ""), *((L(f"runs.status_{s}"), s) for s in STATUSES)]
                status = gr.Dropdown(statuses, value="", label=L("runs.filter_status"))
                task = gr.Dropdown(_values(services, "task"), value="", label=L("runs.filter_task"))
                model = gr.Dropdown(_values(services, "model"), value="", label=L("runs.filter_model"))
                dataset = gr.Dropdown(_values(services, "dataset"), value="", label=L("runs.filter_dataset"))
                search = gr.Textbox(label=L("runs.search"), placeholder=L("runs.search_hint"), scale=2)
                sort = gr.Dropdown([(L(f"runs.sort_{s}"), s) for s in SORTS], value="newest", label=L("runs.sort"))
            table = gr.Dataframe(
                headers=views.table_columns(), interactive=False, max_height=330, label=L("runs.table")
            )
            with gr.Row():
                prev = gr.Button(L("runs.prev"), size="sm", scale=0, min_width=90)
                page = gr.Number(1, precision=0, minimum=1, label=L("runs.page"), scale=0, min_width=90)
                nxt = gr.Button(L("runs.next"), size="sm", scale=0, min_width=90)
                page_size = gr.Dropdown(PAGE_SIZES, value=25, label=L("runs.page_size"), scale=0, min_width=110)
                page_info = gr.Markdown()
            with gr.Row():
                run = gr.Dropdown(
                    run_choices(services),
                    label=L("runs.open"),
                    info=L("runs.open_info"),
                    scale=3,
                    allow_custom_value=True,
                )
                priority = gr.Number(0, precision=0, label=L("runs.priority"), info=L("runs.priority_info"), scale=1)
                set_priority = gr.Button(
                    L("runs.set_priority"), scale=1, interactive=False, elem_classes="tb-inline-button"
                )
            header = gr.Markdown(L("runs.pick"))
            progress = gr.HTML()
            with gr.Row():
                cancel = gr.Button(L("runs.cancel"), variant="stop", interactive=False)
                resume = gr.Button(L("runs.resume"), interactive=False)
                resume_new = gr.Button(L("runs.resume_new"), interactive=False)
                clone = gr.Button(L("runs.clone"), interactive=False)
                delete = gr.Button(L("runs.delete"), interactive=False)
                confirm_delete = gr.Button(L("runs.confirm_delete"), variant="stop", visible=False)
            with gr.Tabs():
                with gr.Tab(L("runs.curves")), gr.Row():
                    loss = gr.LinePlot(
                        x="step",
                        y="value",
                        title=L("runs.loss_title"),
                        height=280,
                        x_title=" ",
                        y_title=" ",
                        label=L("runs.loss_title"),  # never the default (the y column's English name)
                        show_label=False,
                    )
                    with gr.Column():
                        metric = gr.Dropdown(
                            [], label=L("runs.curve"), info=L("runs.curve_info"), allow_custom_value=True
                        )
                        other = gr.LinePlot(
                            x="step",
                            y="value",
                            height=220,
                            x_title=" ",
                            y_title=" ",
                            label=L("runs.curve"),
                            show_label=False,
                        )
                with gr.Tab(L("runs.log")):
                    log = gr.Textbox(label=L("runs.log_tail"), lines=14, max_lines=20, autoscroll=True)
                with gr.Tab(L("runs.results")):
                    results = gr.Markdown()
                    confusion = gr.HTML()
                with gr.Tab(L("runs.config")):
                    config = gr.JSON(label=L("runs.config"))
                with gr.Tab(L("runs.files")):
                    artifacts = gr.Dataframe(interactive=False, label=L("runs.files"), wrap=True)
                with gr.Tab(L("runs.hardware")):
                    hardware = gr.Markdown()
        with gr.Tab(L("runs.tab_compare"), id="runs-compare"):
            compare = runs_compare.build(services)
    timer = gr.Timer(REFRESH_SECONDS)
    return RunsUI(
        status, task, model, dataset, search, sort, table, prev, page, nxt, page_size, page_info, run, header,
        progress, cancel, resume, resume_new, clone, delete, confirm_delete, priority, set_priority, loss, metric,
        other, log, config, results, confusion, artifacts, hardware, timer, compare,
    )  # fmt: skip


def _values(services: Services, column: str, label: Any = None) -> list[tuple[Any, str]]:
    """A filter's choices: All, then the values runs use."""
    return [(label or L("runs.all"), ""), *((v, v) for v in distinct_values(services.database, column))]


def page_of_runs(services: Services, status, task, model, dataset, search, sort, page, size):
    """Table, page label, the page number (kept in range) and the open-run choices for one page."""
    size = int(size or PAGE_SIZES[0])
    page = max(1, int(page or 1))
    query = dict(status=status or None, task=task or None, model=model or None, dataset=dataset or None)
    q = RunQuery(**query, search=search or "", sort=sort or "newest", limit=size, offset=(page - 1) * size)
    result = list_page(services.database, q)
    last = max(1, -(-result.total // size))
    if page > last:  # the filter shrank the list: show its last page
        q.offset = (last - 1) * size
        page, result = last, list_page(services.database, q)
    rows = [summary(r, positions=result.positions) for r in result.runs]
    return views.runs_table(rows), views.page_label(result.total, page, size), page, rows


def detail(services: Services, run_id: int | None, metric: str | None) -> tuple[Any, ...]:
    """Everything about one run, for the detail outputs (see `detail_outputs`)."""
    if run_id is None:
        off = gr.Button(interactive=False)
        empty = views.curve_frame({}, [])
        return (
            t("runs.pick"), "", off, off, off, off, off, off, empty, gr.Dropdown(choices=[], value=None), empty,
            "", None, "", "", views.artifacts_frame({}), "",
        )  # fmt: skip
    try:
        s = actions.show_run(services, int(run_id))
    except ValueError:  # deleted meanwhile (another browser, the CLI)
        return detail(services, None, None)
    status = s["status"]
    names = curve_names(services.database, [s["id"]])
    others = [n for n in names if n != views.LOSS_CURVE]
    first = ("eval_rewards/accuracies", "rewards/margins", "reward", "eval_loss", "learning_rate")  # dpo..., grpo
    preferred = next((n for n in first if n in others), next(iter(others), None))
    chosen = metric if metric in others else preferred
    data = curves(services.database, [s["id"]])
    metrics = s.get("metrics") or {}
    return (
        views.header(s),
        views.progress_bar(s["progress"]),
        gr.Button(interactive=status in CANCELLABLE),
        gr.Button(interactive=status in RESUMABLE),
        gr.Button(interactive=status in RESUMABLE and bool(s.get("checkpoints"))),
        gr.Button(interactive=True),
        gr.Button(interactive=status not in CANCELLABLE),
        gr.Button(interactive=status == "queued"),
        runs_compare.curve_plot(
            views.curve_frame(data, [views.LOSS_CURVE] if views.LOSS_CURVE in names else []), "loss"
        ),
        gr.Dropdown(choices=others, value=chosen),
        runs_compare.curve_plot(views.curve_frame(data, [chosen] if chosen else []), chosen),
        s.get("log_tail", "") + _cluster_log(s),
        s.get("config"),
        views.final_metrics(metrics),
        views.confusion_matrix(metrics),
        views.artifacts_frame(s),
        views.hardware(s),
    )


def finished_key(services: Services, run_id: int | None, metric: str | None) -> tuple | None:
    """What a finished run's detail is made of, read in one query; None while it may change on its
    own (queued, running) or is not there. The timer redraws the detail only when this changes."""
    if run_id is None:
        return None
    try:
        run = get_run(services.database, int(run_id))
    except ValueError:
        return None
    if not run.status.finished:
        return None
    return run.id, metric, run.status.value, run.step, run.finished_at, run.priority, len(run.artifacts)


def wire(services: Services, ui: RunsUI, app: gr.Blocks) -> None:
    filters = [ui.status, ui.task, ui.model, ui.dataset, ui.search, ui.sort, ui.page, ui.page_size]
    outputs_detail = [
        ui.header, ui.progress, ui.cancel, ui.resume, ui.resume_new, ui.clone, ui.delete, ui.set_priority,
        ui.loss, ui.metric, ui.other, ui.log, ui.config, ui.results, ui.confusion, ui.artifacts, ui.hardware,
    ]  # fmt: skip
    outputs_list = [ui.table, ui.page_info, ui.page, ui.run]
    private = {"api_visibility": "private"}

    def listed(*values):
        *args, current = values
        frame, label, page, rows = page_of_runs(services, *args)
        choices = [(f"#{r['id']} {r['name']}", r["id"]) for r in rows]
        if current is not None and current not in [c[1] for c in choices]:
            choices.append((f"#{current}", current))
        return frame, label, page, choices

    def refresh_list(*values):
        frame, label, page, choices = listed(*values)
        return frame, label, page, gr.Dropdown(choices=choices)

    def refresh_all(*values):
        """The timer's refresh: never writes the page number, so a click on Next is not undone by a tick.
        A finished run's detail is redrawn only when it changed (no plot flicker, no re-reading files)."""
        *list_values, run_id, metric, drawn = values
        frame, label, _, choices = refresh_list(*list_values, run_id)
        key = finished_key(services, run_id, metric)
        if key is not None and key == drawn:
            return frame, label, choices, *(gr.skip() for _ in outputs_detail), drawn
        return frame, label, choices, *detail(services, run_id, metric), key

    def first_page(*values):
        return refresh_list(*values[:6], 1, *values[7:])

    def step_page(delta: int):
        return lambda *values: refresh_list(*values[:6], max(1, int(values[6] or 1) + delta), *values[7:])

    def open_row(evt: gr.SelectData):
        row = evt.row_value or []
        return int(row[0]) if row else gr.skip()

    def act(action, message_key: str):
        def handler(run_id, metric, *extra):
            if run_id is None:
                return refuse(t("common.pick_run"), len(outputs_detail) + 1)
            try:
                result = action(int(run_id), *extra)
            except ValueError as e:
                return refuse(str(e), len(outputs_detail) + 1)
            new_id = result.get("id", run_id) if isinstance(result, dict) and not result.get("deleted") else None
            inform(t(message_key, run_id=run_id, new_id=new_id))
            shown = None if isinstance(result, dict) and result.get("deleted") else new_id
            return gr.Dropdown(choices=run_choices(services), value=shown), *detail(services, shown, metric)

        return handler

    drawn = gr.State(None)  # finished_key of the detail the timer drew last
    all_outputs = [ui.table, ui.page_info, ui.run, *outputs_detail, drawn]
    ui.timer.tick(refresh_all, [*filters, ui.run, ui.metric, drawn], all_outputs, show_progress="hidden", **private)

    def opened(*values):
        """The page (re)opens: the list at once, and the run that is training (else the next queued one) open
        in the detail, so a reload mid-run finds it where it was."""
        active = None
        if values[-1] is None:
            found = list_runs(services.database, "running", limit=1) or list_runs(services.database, "queued", limit=1)
            active = found[0].id if found else None
        frame, label, page, choices = listed(*values[:-1], values[-1] if active is None else active)
        opened_run = {} if active is None else {"value": active}
        return frame, label, page, gr.Dropdown(choices=choices, **opened_run)

    # At once when the page opens (in its language), not at the first tick.
    app.load(opened, [*filters, ui.run], outputs_list, show_progress="hidden", **private)
    for f in (ui.status, ui.task, ui.model, ui.dataset, ui.sort, ui.page_size):
        f.change(first_page, [*filters, ui.run], outputs_list, **private)
    ui.search.submit(first_page, [*filters, ui.run], outputs_list, **private)
    ui.page.submit(refresh_list, [*filters, ui.run], outputs_list, **private)
    ui.prev.click(step_page(-1), [*filters, ui.run], outputs_list, **private)
    ui.next.click(step_page(+1), [*filters, ui.run], outputs_list, **private)
    ui.table.select(open_row, None, [ui.run], **private)
    show = lambda run_id, metric: detail(services, run_id, metric)  # noqa: E731
    ui.run.change(show, [ui.run, ui.metric], outputs_detail, **private)
    ui.metric.input(show, [ui.run, ui.metric], outputs_detail, show_progress="hidden", **private)
    for column in ("task", "model", "dataset"):
        dropdown = getattr(ui, column)
        refreshed = lambda c=column: gr.Dropdown(choices=_values(services, c, t("runs.all")))  # noqa: E731
        dropdown.focus(refreshed, None, [dropdown], **private)
    acted = [ui.run, *outputs_detail]
    inputs = [ui.run, ui.metric]
    ui.cancel.click(act(lambda i: actions.cancel_run(services, i), "runs.cancelling_toast"), inputs, acted, **private)
    ui.resume.click(act(lambda i: actions.resume_run(services, i), "runs.resumed_toast"), inputs, acted, **private)
    ui.resume_new.click(
        act(lambda i: actions.resume_run(services, i, as_new=True), "runs.resumed_new_toast"), inputs, acted, **private
    )
    ui.set_priority.click(
        act(lambda i, p: actions.set_priority(services, i, int(p or 0)), "runs.priority_toast"),
        [*inputs, ui.priority],
        acted,
        **private,
    )
    # Delete asks first: a run's checkpoints and exports cannot be brought back. The second button
    # shows until another run is opened.
    delete = act(lambda i: actions.delete_run(services, i), "runs.deleted_toast")
    ui.delete.click(lambda: gr.Button(visible=True), None, [ui.confirm_delete], **private)
    ui.run.change(lambda: gr.Button(visible=False), None, [ui.confirm_delete], **private)
    ui.confirm_delete.click(delete, inputs, acted, **private)
    runs_compare.wire(services, ui.compare, [ui.status, ui.task, ui.model, ui.dataset, ui.search])


def wire_clone(services: Services, ui: RunsUI, train_ui: Any, tabs: gr.Tabs) -> None:
    """Clone: the open run's settings into the Train tab's widgets of the same names, then show Train."""
    widgets: dict[str, Any] = train_ui.config_widgets()  # RunConfig field name -> its Train widget
    names = list(widgets)

    def clone(run_id):
        if run_id is None:
            return refuse(t("common.pick_run"), len(names) + 1)
        values = form_values(services, int(run_id), names)
        inform(t("runs.cloned_toast", run_id=run_id))
        return *values, gr.Tabs(selected="train")

    ui.clone.click(clone, [ui.run], [*widgets.values(), tabs], api_visibility="private")


def _cluster_log(s: dict) -> str:
    """A Ray run's job log (Ray Train's driver and workers) under the run's own log."""
    tail = s.get("cluster_log_tail")
    return f"\n\n{t('runs.cluster_log', job=s.get('cluster_job_id'))}\n{tail}" if tail else ""
