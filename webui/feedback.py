"""How handlers tell a person something went wrong: a toast, and the page left as it was."""

from __future__ import annotations

import gradio as gr


def refuse(message: str, outputs: int):
    """Show `message` as a warning and change none of the handler's `outputs` components.

    Raising gr.Error would also mark every output as failed and blank tables and plots.
    """
    gr.Warning(message)
    skips = tuple(gr.skip() for _ in range(outputs))
    return skips[0] if outputs == 1 else skips
