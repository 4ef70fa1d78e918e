"""build_app(services) -> gr.Blocks: one module per tab, each a thin layer over backend/."""

from __future__ import annotations

import gradio as gr

from backend.services import Services
from webui import api, choices
from webui.i18n import L, language_selector, wire_language
from webui.tabs import datasets, evaluate, export, models, playground, runs, search, train

# Uploads land in Gradio's cache; once imported, the dataset keeps its own copy, so cached files older
# than a day are deleted every hour instead of piling up in the temp folder.
DELETE_CACHE = (3600, 86400)

CSS = """
.tb-progress { background: var(--neutral-200); border-radius: 6px; height: 14px; overflow: hidden; }
.tb-progress > div { background: var(--color-accent); height: 100%; transition: width .5s; }
.tb-quick { border-left: 4px solid var(--color-accent); padding-left: 12px; }
#tb-language { flex-grow: 0; align-self: center; }
/* a button beside a labelled field: field height, level with the field's input, not stretched to the row */
.tb-inline-button { align-self: flex-end; max-height: 44px; margin-bottom: 10px; }
/* Gradio 6 titles a toast with its English type ("Warning"), whatever title= says: a Chinese page
   draws the title from here instead (the count after it, "(2)", keeps its size). */
html:lang(zh) .toast-title { font-size: 0 !important; }
html:lang(zh) .toast-title > *, html:lang(zh) .toast-title::before { font-size: var(--text-lg); }
html:lang(zh) .toast-title.info::before { content: "提示"; }
html:lang(zh) .toast-title.warning::before { content: "注意"; }
html:lang(zh) .toast-title.error::before { content: "错误"; }
html:lang(zh) .toast-title.success::before { content: "成功"; }
"""


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="Tuneboard", delete_cache=DELETE_CACHE) as app:
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                gr.Markdown(L("app.title"))
                gr.Markdown(L("app.tagline"))
            language = language_selector()
        with gr.Tabs() as tabs:
            with gr.Tab(L("tabs.train"), id="train") as train_tab:
                train_ui = train.build(services)
            with gr.Tab(L("tabs.datasets"), id="datasets"):
                datasets_ui = datasets.build(services)
            with gr.Tab(L("tabs.runs"), id="runs"):
                runs_ui = runs.build(services)
            with gr.Tab(L("tabs.search"), id="search") as search_tab:
                search_ui = search.build(services)
            with gr.Tab(L("tabs.playground"), id="playground") as playground_tab:
                playground_ui = playground.build(services)
            with gr.Tab(L("tabs.evaluate"), id="evaluate") as evaluate_tab:
                evaluate_ui = evaluate.build(services)
            with gr.Tab(L("tabs.export"), id="export") as export_tab:
                export_ui = export.build(services)
            with gr.Tab(L("tabs.models"), id="models") as models_tab:
                models_ui = models.build(services)
        wire_language(app, language)
        train.wire(services, train_ui, tabs, runs_ui, app)
        datasets.wire(services, datasets_ui, train_ui)
        runs.wire(services, runs_ui, app)
        runs.wire_clone(services, runs_ui, train_ui, tabs)  # Runs' Clone fills the Train form
        search.wire(services, search_ui, train_ui, tabs)  # "Use best" fills the Train form
        playground.wire(services, playground_ui)
        export.wire(services, export_ui)
        evaluate.wire(services, evaluate_ui, evaluate_tab, app)
        models.wire(services, models_ui, models_tab, app)
        api.register(services)  # the CLI's actions, as JSON endpoints
        # Everything that lists database rows is read when a page opens and when its tab is shown,
        # so a reload, another browser or the CLI never leaves a stale list on screen.
        private = {"api_visibility": "private", "show_progress": "hidden"}
        refresh_datasets = choices.refresh_choices(services, every_task=True)
        app.load(refresh_datasets, [train_ui.dataset, train_ui.task], [train_ui.dataset], **private)
        train_tab.select(refresh_datasets, [train_ui.dataset, train_ui.task], [train_ui.dataset], **private)
        app.load(datasets.refresh(services), [datasets_ui.chosen], datasets.refreshed(datasets_ui), **private)
        searches = search.refresh_lists(services)
        search_lists = ([search_ui.study, search_ui.task, search_ui.dataset], [search_ui.study, search_ui.dataset])
        app.load(searches, *search_lists, **private)
        app.load(search.localize, None, [search_ui.space], **private)
        search_tab.select(searches, *search_lists, **private)
        # Playground: chat runs, runs to compare, classifiers, every run for batch prediction, and the memory in use.
        shown = gr.State(None)
        lists, (inputs, outputs) = playground.refresh(services), playground.refresh_io(playground_ui, shown)
        app.load(lists, inputs, outputs, **private)
        playground_tab.select(lists, inputs, outputs, **private)
        for tab, dropdown, task in ((export_tab, export_ui.run, None),):
            shown = gr.State(None)  # the completed runs this page has listed
            listed = lambda v, seen, task=task: choices.completed_runs(services, v, task, seen)  # noqa: E731 - per tab
            app.load(listed, [dropdown, shown], [dropdown, shown], **private)
            tab.select(listed, [dropdown, shown], [dropdown, shown], **private)
    return app


def build_demo(services: Services, run_id: int) -> gr.Blocks:
    """Demo mode: the playground of one completed run and a /chat endpoint; nothing else exists.

    Raises ValueError (naming the run) when the run cannot serve: missing, not completed, no model.
    """
    from backend.playground.chat import require_chat_run
    from backend.runs.queue import get_run
    from backend.runs.results import model_folder

    require_chat_run(services.database, run_id)  # refuses before anything is served
    model_folder(services.database, services.workspace, run_id)
    run = get_run(services.database, run_id)
    with gr.Blocks(title=f"Tuneboard demo: {run.name}", delete_cache=DELETE_CACHE) as app:
        with gr.Row(equal_height=True):
            with gr.Column(scale=5):
                gr.Markdown(L("app.title"))
                gr.Markdown(L("app.demo_tagline"))
            language = language_selector()
        ui = playground.build(services, demo_run=(f"#{run.id} {run.name}", run.id))
        playground.wire(services, ui, demo_run=run.id)
        wire_language(app, language)
        api.register_demo(services, run.id)
    return app
