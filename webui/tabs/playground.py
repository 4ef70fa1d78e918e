"""Playground tab: chat with a completed run's model, tokens streamed as they are generated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from backend.config import CHAT, GenerationConfig
from backend.inference import load, stream_chat
from backend.services import Services
from webui.feedback import refuse, warn
from webui.i18n import L, t


@dataclass
class PlaygroundUI:
    run: gr.Dropdown
    chat: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    clear: gr.Button
    temperature: gr.Slider
    top_p: gr.Slider
    max_new_tokens: gr.Slider


def build(services: Services, demo_run: tuple[str, int] | None = None) -> PlaygroundUI:
    """The playground; in a demo, `demo_run` (label, run id) is the only model and cannot be changed."""
    with gr.Row():
        with gr.Column(scale=3):
            if demo_run is None:
                run = gr.Dropdown([], label=L("playground.model"), info=L("playground.model_info"))
            else:
                run = gr.Dropdown([demo_run], value=demo_run[1], label=L("playground.model"), interactive=False)
            chat = gr.Chatbot(label=L("playground.chat"), height=420, placeholder=L("playground.chat_placeholder"))
            with gr.Row():
                message = gr.Textbox(
                    label=L("playground.message"),
                    placeholder=L("playground.message_placeholder"),
                    show_label=False,
                    scale=5,
                )
                send = gr.Button(L("playground.send"), variant="primary", scale=1)
            clear = gr.Button(L("playground.clear"), size="sm")
        with gr.Column(scale=1):
            temperature = _slider("temperature", 0, 2, 0.05)
            top_p = _slider("top_p", 0.05, 1, 0.05)
            max_new_tokens = _slider("max_new_tokens", 1, 1024, 1)
    return PlaygroundUI(run, chat, message, send, clear, temperature, top_p, max_new_tokens)


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


def wire(services: Services, ui: PlaygroundUI, demo_run: int | None = None) -> None:
    """Send/Enter stream a reply; in a demo every request uses `demo_run`, whatever the page sends."""

    def respond(
        run_id: int | None, message: str, history: list[dict], temperature: float, top_p: float, max_new_tokens: int
    ) -> Iterator[tuple[list[dict], str]]:
        if demo_run is not None:
            run_id = demo_run
        if run_id is None:
            yield refuse(t("common.no_completed_run"), 2)
            return
        if not (message or "").strip():
            yield refuse(t("playground.type_first"), 2)
            return
        turns = [{"role": m["role"], "content": _text(m["content"])} for m in history or []]
        turns.append({"role": "user", "content": message})
        shown = [*turns, {"role": "assistant", "content": "…"}]
        yield shown, ""  # the question shows at once, even while the model loads
        try:
            model, tokenizer = load(services.database, services.workspace, int(run_id))
            gen = GenerationConfig(max_new_tokens=int(max_new_tokens), temperature=temperature, top_p=top_p)
            for text in stream_chat(model, tokenizer, turns, gen):
                shown[-1] = {"role": "assistant", "content": text}
                yield shown, gr.skip()  # the box was emptied once: what the person types meanwhile stays
        except (ValueError, OSError) as e:  # the chat as it was, and the question back in the box to retry
            warn(str(e))
            yield history or [], message

    inputs = [ui.run, ui.message, ui.chat, ui.temperature, ui.top_p, ui.max_new_tokens]
    # One listener for Send and Enter, so a question sent during a reply (either way) runs after it, never beside it.
    gr.on(
        [ui.send.click, ui.message.submit],
        respond,
        inputs,
        [ui.chat, ui.message],
        api_visibility="private",
        trigger_mode="always_last",
    )
    ui.clear.click(lambda: [], None, ui.chat, api_visibility="private")


def _text(content) -> str:
    """Chatbot history content may come back as a list of parts; the model wants plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)
