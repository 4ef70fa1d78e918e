"""How a metric or a setting is named on screen: the page's language, with the recorded key beside it."""

from __future__ import annotations

import html

from webui.i18n import DEFAULT, messages, t


def metric_label(key: str, html_key: bool = True) -> str:
    """A metric's name in the page's language with its recorded key beside it (grey in HTML), or the key."""
    name = f"runs.metric_{key}"
    if name not in messages(DEFAULT):
        return html.escape(key) if html_key else key
    if not html_key:
        return f"{t(name)} ({key})"
    return f"{html.escape(t(name))} <small style='opacity:.6'>{html.escape(key)}</small>"


def setting_label(key: str) -> str:
    """A RunConfig field as HTML: the Train tab's label for it, with the CLI's name beside it in grey."""
    name = f"train.field.{key}"
    if name not in messages(DEFAULT):
        return html.escape(key)
    return f"{html.escape(t(name))} <small style='opacity:.6'>{html.escape(key)}</small>"
