"""How handlers tell a person something: toasts titled in the page's language, the page left intact on refusal."""

from __future__ import annotations

import gradio as gr

from webui.i18n import t


def inform(message: str) -> None:
    """A grey toast ("Info" / "提示") with `message`; write it with t() so it is in the page's language."""
    gr.Info(message, title=t("common.info"))


def warn(message: str) -> None:
    """A yellow toast ("Warning" / "注意") with `message`."""
    gr.Warning(message, title=t("common.warning"))


def refuse(message: str, outputs: int):
    """Show `message` as a warning and change none of the handler's `outputs` components.

    Raising gr.Error would also mark every output as failed and blank tables and plots. Backend
    errors (ValueError texts naming a file, row or setting) are passed as they are, in English.
    """
    warn(message)
    skips = tuple(gr.skip() for _ in range(outputs))
    return skips[0] if outputs == 1 else skips
