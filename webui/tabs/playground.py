"""Playground tab: chat with a completed run's model, compare it side by side with its base, classify, predict.

Chat and Side by side share the generation settings on the right; the loaded models (one memory-bounded
cache, backend.playground.cache) are listed under them with an Unload button. Classification and batch
prediction live in playground_classify.py. In a demo only the chat exists (no sub-tabs, no cache controls).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from backend.config import CHAT, GenerationConfig
from backend.models import chat_models
from backend.playground.cache import CACHE
from backend.playground.chat import base_of, chat_source, load, source_label, stream_chat, stream_side_by_side
from backend.runs.queue import list_runs
from backend.services import Services
from webui.choices import completed_runs
from webui.feedback import inform, refuse, warn
from webui.i18n import L, t
from webui.tabs import playground_classify

COLUMNS = 3  # side by side: the base model and up to two fine-tuned runs


@dataclass
class Settings:
    """The generation settings, in GenerationConfig's order after the system prompt."""

    system: gr.Textbox
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    max_new_tokens: gr.Slider
    repetition_penalty: gr.Slider
    seed: gr.Number
    stop: gr.Textbox

    def all(self) -> list[gr.components.Component]:
        """System prompt first, then the arguments of `_generation` in order."""
        head = [self.system, self.temperature, self.top_p, self.top_k, self.max_new_tokens]
        return [*head, self.repetition_penalty, self.seed, self.stop]


@dataclass
class CompareUI:
    runs: gr.Dropdown
    with_base: gr.Checkbox
    chats: list[gr.Chatbot]
    message: gr.Textbox
    send: gr.Button
    clear: gr.Button


@dataclass
class PlaygroundUI:
    run: gr.Dropdown
    chat: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    clear: gr.Button
    settings: Settings
    compare: CompareUI | None = None
    classify: playground_classify.ClassifyUI | None = None
    batch: playground_classify.BatchUI | None = None
    memory: gr.Markdown | None = None
    unload: gr.Button | None = None


def build(services: Services, demo_run: tuple[str, int] | None = None) -> PlaygroundUI:
    """The playground; in a demo, `demo_run` (label, run id) is the only model and cannot be changed."""
    compare = classify = batch = memory = unload = None
    with gr.Row():
        with gr.Column(scale=3):
            if demo_run is not None:  # a demo page holds no tabs: the chat alone
                chat = _chat(demo_run)
            else:
                with gr.Tabs():
                    with gr.Tab(L("playground.tab_chat")) as chat_tab:
                        chat = _chat(None)
                    with gr.Tab(L("playground.tab_compare")) as compare_tab:
                        compare = _compare()
                    with gr.Tab(L("playground.tab_classify")) as classify_tab:
                        classify = playground_classify.build_classify()
                    with gr.Tab(L("playground.tab_batch")) as batch_tab:
                        batch = playground_classify.build_batch()
        with gr.Column(scale=1):
            with gr.Column() as generation:
                settings = _settings()
            if demo_run is None:
                memory = gr.Markdown(L("playground.memory_idle"))
                unload = gr.Button(L("playground.unload"), size="sm")
                # Generation settings mean nothing to a classifier: shown with Chat and Side by side only.
                for tab, shown in ((chat_tab, True), (compare_tab, True), (classify_tab, False), (batch_tab, False)):
                    tab.select(lambda v=shown: gr.Column(visible=v), None, generation, api_visibility="private")
    return PlaygroundUI(*chat, settings, compare, classify, batch, memory, unload)


def _chat(demo_run: tuple[str, int] | None) -> tuple[gr.Dropdown, gr.Chatbot, gr.Textbox, gr.Button, gr.Button]:
    if demo_run is None:
        run = gr.Dropdown([], label=L("playground.model"), info=L("playground.model_info"))
    else:
        run = gr.Dropdown([demo_run], value=demo_run[1], label=L("playground.model"), interactive=False)
    chat = gr.Chatbot(label=L("playground.chat"), height=420, placeholder=L("playground.chat_placeholder"))
    with gr.Row():
        message = gr.Textbox(
            label=L("playground.message"), placeholder=L("playground.message_placeholder"), show_label=False, scale=5
        )
        send = gr.Button(L("playground.send"), variant="primary", scale=1)
    clear = gr.Button(L("playground.clear"), size="sm")
    return run, chat, message, send, clear


def _compare() -> CompareUI:
    gr.Markdown(L("playground.compare_intro"))
    with gr.Row(equal_height=True):
        runs = gr.Dropdown([], multiselect=True, max_choices=COLUMNS - 1, label=L("playground.compare_runs"), scale=4)
        with_base = gr.Checkbox(True, label=L("playground.compare_base"), scale=1)
    with gr.Row(equal_height=True):
        chats = [gr.Chatbot(label=L("playground.column_empty"), height=380, visible=i < 2) for i in range(COLUMNS)]
    with gr.Row():
        message = gr.Textbox(
            label=L("playground.message"),
            placeholder=L("playground.compare_placeholder"),
            show_label=False,
            scale=5,
        )
        send = gr.Button(L("playground.compare_send"), variant="primary", scale=1)
    clear = gr.Button(L("playground.clear"), size="sm")
    return CompareUI(runs, with_base, chats, message, send, clear)


def _settings() -> Settings:
    system = gr.Textbox(
        label=L("playground.system"), info=L("playground.system_info"), lines=2, placeholder=L("playground.system_ph")
    )
    temperature = _slider("temperature", 0, 2, 0.05)
    top_p = _slider("top_p", 0.05, 1, 0.05)
    top_k = _slider("top_k", 0, 200, 1)
    max_new_tokens = _slider("max_new_tokens", 1, 1024, 1)
    repetition_penalty = _slider("repetition_penalty", 0.5, 2, 0.05)
    seed = gr.Number(CHAT.seed, precision=0, label=L("playground.seed"), info=L("playground.seed_info"))
    stop = gr.Textbox(label=L("playground.stop"), info=L("playground.stop_info"), lines=2)
    return Settings(system, temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, stop)


def _slider(name: str, low: float, high: float, step: float) -> gr.Slider:
    """A GenerationConfig setting; label and hint from the locale files (playground.NAME, NAME_info)."""
    return gr.Slider(
        low,
        high,
        value=getattr(CHAT, name),
        step=step,
        label=L(f"playground.{name}"),
        info=L(f"playground.{name}_info"),
    )


def _generation(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, stop) -> GenerationConfig:
    """The settings column as a GenerationConfig (ValueError naming a bad setting); stop texts one per line."""
    return GenerationConfig(
        max_new_tokens=int(max_new_tokens),
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        repetition_penalty=float(repetition_penalty),
        seed=int(seed if seed not in (None, "") else -1),
        stop=tuple(line for line in (stop or "").splitlines() if line.strip()),
    )


def wire(services: Services, ui: PlaygroundUI, demo_run: int | None = None) -> None:
    """Send/Enter stream a reply; in a demo every request uses `demo_run`, whatever the page sends."""
    private = {"api_visibility": "private"}

    def respond(run_id: int | str | None, message: str, history: list[dict], system: str, *gen) -> Iterator[tuple]:
        if demo_run is not None:
            run_id = demo_run
        if run_id is None:
            yield refuse(t("common.no_completed_run"), 2)
            return
        if not (message or "").strip():
            yield refuse(t("playground.type_first"), 2)
            return
        try:
            settings = _generation(*gen)
        except ValueError as e:
            yield refuse(str(e), 2)
            return
        turns = [*_turns(history), {"role": "user", "content": message}]
        shown = [*turns, {"role": "assistant", "content": "…"}]
        yield shown, ""  # the question shows at once, even while the model loads
        try:
            model, tokenizer = load(services.database, services.workspace, chat_source(run_id))
            for text in stream_chat(model, tokenizer, turns, settings, system or ""):
                shown[-1] = {"role": "assistant", "content": text}
                yield shown, gr.skip()  # the box was emptied once: what the person types meanwhile stays
        except (ValueError, OSError) as e:  # the chat as it was, and the question back in the box to retry
            warn(str(e))
            yield history or [], message

    inputs = [ui.run, ui.message, ui.chat, *ui.settings.all()]
    # One listener for Send and Enter, so a question sent during a reply (either way) runs after it, never beside it.
    sent = gr.on(
        [ui.send.click, ui.message.submit],
        respond,
        inputs,
        [ui.chat, ui.message],
        trigger_mode="always_last",
        **private,
    )
    ui.clear.click(lambda: [], None, ui.chat, **private)
    if ui.memory is None:
        return
    memory = lambda: _memory_text()  # noqa: E731 - read at each call
    sent.then(memory, None, ui.memory, show_progress="hidden", **private)
    ui.unload.click(_unload, None, ui.memory, **private)
    _wire_compare(services, ui, memory)
    playground_classify.wire(services, ui.classify, ui.batch, ui.memory, memory)


def _wire_compare(services: Services, ui: PlaygroundUI, memory) -> None:
    c = ui.compare
    private = {"api_visibility": "private"}

    def columns(run_ids: list[int] | None, with_base: bool) -> list:
        """Each column's heading, and which are shown: the base first (when ticked), then each chosen run."""
        try:
            names = _sources(services, run_ids or [], with_base)
            labels = [source_label(services.database, s) for s in names]
        except ValueError as e:  # e.g. a run deleted since the list was shown
            return refuse(str(e), COLUMNS)
        if with_base and names:
            labels[0] = t("playground.column_base", name=labels[0])
        # a new set of models starts new conversations: an old column's history belonged to another model
        updates = [gr.Chatbot(value=[], label=label, visible=True) for label in labels]
        blank = L("playground.column_empty") if not names else None
        updates += [gr.Chatbot(visible=not names and i < 2, label=blank) for i in range(len(names), COLUMNS)]
        return updates

    def send(run_ids, with_base, message, system, *rest) -> Iterator[tuple]:
        histories, gen = rest[:COLUMNS], rest[COLUMNS:]
        if not run_ids:
            yield refuse(t("playground.compare_pick"), COLUMNS + 1)
            return
        if not (message or "").strip():
            yield refuse(t("playground.type_first"), COLUMNS + 1)
            return
        try:
            settings = _generation(*gen)
            sources = _sources(services, [int(r) for r in run_ids], with_base)
        except ValueError as e:
            yield refuse(str(e), COLUMNS + 1)
            return
        conversations = [[*_turns(histories[i]), {"role": "user", "content": message}] for i in range(len(sources))]
        shown = [[*turns, {"role": "assistant", "content": "…"}] for turns in conversations]
        pad = [gr.skip()] * (COLUMNS - len(shown))
        yield (*shown, *pad, "")
        try:
            db, ws = services.database, services.workspace
            for answers in stream_side_by_side(db, ws, sources, conversations, settings, system or ""):
                for i, text in enumerate(answers):
                    shown[i][-1] = {"role": "assistant", "content": text or "…"}
                yield (*[list(h) for h in shown], *pad, gr.skip())
        except (ValueError, OSError) as e:
            warn(str(e))
            yield (*[h or [] for h in histories], message)

    for trigger in (c.runs.change, c.with_base.change):
        trigger(columns, [c.runs, c.with_base], c.chats, show_progress="hidden", **private)
    inputs = [c.runs, c.with_base, c.message, ui.settings.system, *c.chats, *ui.settings.all()[1:]]
    sent = gr.on(
        [c.send.click, c.message.submit], send, inputs, [*c.chats, c.message], trigger_mode="always_last", **private
    )
    sent.then(memory, None, ui.memory, show_progress="hidden", **private)
    c.clear.click(lambda: [[] for _ in range(COLUMNS)], None, c.chats, **private)


def _sources(services: Services, run_ids: list[int], with_base: bool) -> list[str | int]:
    """What each column asks: the first run's base model (when ticked), then the runs themselves."""
    if not run_ids:
        return []
    base = [base_of(services.database, run_ids[0])] if with_base else []
    return [*base, *run_ids]


def refresh(services: Services):
    """For app.py: fills the playground's run lists when the page opens or the tab is shown."""

    def lists(
        current: int | str | None, shown: list[int] | None, chosen: list[int] | None, clf: int | None, batch: int | None
    ):
        bases = [(f"{t('playground.base_model')}: {name}", name) for name in chat_models(services.workspace.models_dir)]
        chat, ids = completed_runs(services, current, "sft", shown, bases)
        sft = [(f"#{r.id} {r.name}", r.id) for r in list_runs(services.database, status="completed", task="sft")]
        keep = [r for r in chosen or [] if r in {i for _, i in sft}]
        others = playground_classify.run_lists(services, clf, batch)
        return chat, ids, gr.Dropdown(choices=sft, value=keep), *others, _memory_text()

    return lists


def refresh_io(ui: PlaygroundUI, shown: gr.State) -> tuple[list, list]:
    """(inputs, outputs) of `refresh`'s function."""
    inputs = [ui.run, shown, ui.compare.runs, ui.classify.run, ui.batch.run]
    outputs = [ui.run, shown, ui.compare.runs, ui.classify.run, ui.batch.run, ui.memory]
    return inputs, outputs


def _memory_text() -> str:
    try:
        usage = CACHE.usage()
    except ValueError as e:  # a bad $TUNEBOARD_MODEL_CACHE_MB
        return str(e)
    if not usage["models"]:
        return t("playground.memory_none", limit=_mb(usage["limit_bytes"]))
    names = ", ".join(f"{m['label']} ({_mb(m['bytes'])})" for m in reversed(usage["models"]))
    return t(
        "playground.memory",
        used=_mb(usage["used_bytes"]),
        limit=_mb(usage["limit_bytes"]),
        models=names,
        rss=_mb(usage["process_rss_bytes"] or 0),
    )


def _unload() -> str:
    gone = CACHE.unload()
    inform(t("playground.unloaded", n=len(gone)))
    return _memory_text()


def _mb(n: int) -> str:
    mb = n / 1024**2
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.2g} MB"  # a small model shows as 0.2 MB, not 0 MB


def _turns(history: list[dict] | None) -> list[dict[str, str]]:
    """Chatbot history as model turns (the "…" shown while waiting is never sent)."""
    return [{"role": m["role"], "content": _text(m["content"])} for m in history or []]


def _text(content) -> str:
    """Chatbot history content may come back as a list of parts; the model wants plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)
