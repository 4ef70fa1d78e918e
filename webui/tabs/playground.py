"""Playground tab: chat with a completed run's model, tokens streamed as they are generated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import gradio as gr

from backend.config import CHAT, GenerationConfig
from backend.inference import load, stream_chat
from backend.services import Services
from webui.feedback import refuse


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


def build(services: Services) -> PlaygroundUI:
    with gr.Row():
        with gr.Column(scale=3):
            run = gr.Dropdown([], label="Model (a completed run)", info="The newest completed run is selected.")
            chat = gr.Chatbot(
                label="Chat", height=420, placeholder="Ask the fine-tuned model something, e.g. *Who are you?*"
            )
            with gr.Row():
                message = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, scale=5)
                send = gr.Button("Send", variant="primary", scale=1)
            clear = gr.Button("Clear chat", size="sm")
        with gr.Column(scale=1):
            temperature = _slider("temperature", "Temperature", 0, 2, 0.05)
            top_p = _slider("top_p", "Top-p", 0.05, 1, 0.05)
            max_new_tokens = _slider("max_new_tokens", "Max new tokens", 1, 1024, 1)
    return PlaygroundUI(run, chat, message, send, clear, temperature, top_p, max_new_tokens)


def _slider(name: str, label: str, low: float, high: float, step: float) -> gr.Slider:
    hint = {f.name: f.metadata["help"] for f in fields(GenerationConfig)}[name]
    return gr.Slider(low, high, value=getattr(CHAT, name), step=step, label=label, info=hint)


def wire(services: Services, ui: PlaygroundUI) -> None:
    def respond(
        run_id: int | None, message: str, history: list[dict], temperature: float, top_p: float, max_new_tokens: int
    ) -> Iterator[tuple[list[dict], str]]:
        if run_id is None:
            yield refuse("No completed run yet: train one in the Train tab first.", 2)
            return
        if not (message or "").strip():
            yield refuse("Type a message first.", 2)
            return
        turns = [{"role": m["role"], "content": _text(m["content"])} for m in history or []]
        turns.append({"role": "user", "content": message})
        shown = [*turns, {"role": "assistant", "content": "…"}]
        yield shown, ""  # the question shows at once, even while the model loads
        try:
            model, tokenizer = load(services.database, services.workspace, int(run_id))
        except (ValueError, OSError) as e:
            yield refuse(str(e), 2)
            return
        try:
            gen = GenerationConfig(max_new_tokens=int(max_new_tokens), temperature=temperature, top_p=top_p)
            for text in stream_chat(model, tokenizer, turns, gen):
                shown[-1] = {"role": "assistant", "content": text}
                yield shown, ""
        except ValueError as e:
            yield refuse(str(e), 2)

    inputs = [ui.run, ui.message, ui.chat, ui.temperature, ui.top_p, ui.max_new_tokens]
    ui.send.click(respond, inputs, [ui.chat, ui.message], api_visibility="private")
    ui.message.submit(respond, inputs, [ui.chat, ui.message], api_visibility="private")
    ui.clear.click(lambda: [], None, ui.chat, api_visibility="private")


def _text(content) -> str:
    """Chatbot history content may come back as a list of parts; the model wants plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)
