"""English and 简体中文 for every label, hint and message of the UI (webui/locales/en.yaml, zh.yaml).

How to add translated text (everyone editing webui/):

1. Add the key to BOTH webui/locales/en.yaml and webui/locales/zh.yaml, in the section of your tab
   (``train:``, ``datasets:``, ``runs:`` ...). Nesting makes dotted keys: ``train: {start: ...}`` is
   ``"train.start"``. Placeholders use ``{name}`` and must be the same in both files.
   tests/webui/test_i18n.py fails when a key or placeholder is missing in either language.
2. Static text fixed when the page is built (label, info, placeholder, button and tab text,
   Markdown): write ``L("train.start")`` where the English string was::

       from webui.i18n import L, t
       gr.Button(L("train.start"), variant="primary")
       gr.Number(label=L("train.epochs"), info=L("train.epochs_info"))

   The browser shows it in the page's language (the selector at the top right reloads the page in
   the other one; ``?lang=zh`` or ``?lang=en`` in the URL picks one too).
   Choice labels too: ``gr.Radio([(L("export.format_merged"), "merged"), ...])``.
3. Text a handler produces (toasts, refuse() messages, Markdown with numbers, table headers):
   ``t("runs.queued", run_id=run.id)`` formats it in the language of the person whose request is
   being handled (the selector's cookie, else the browser's Accept-Language, else English)::

       from webui.feedback import inform, refuse, warn   # toasts titled 提示/注意 in Chinese
       inform(t("train.queued", run_id=run.id))
       return refuse(t("common.no_completed_run"), 2)

   Backend errors (ValueError texts naming a file, row or setting) stay English on purpose: they
   are shared with the CLI and API. Show them as they are: ``refuse(str(e), n)``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT = "en"
COOKIE = "tuneboard_lang"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """All keys of one language, flattened to dotted names."""
    path = LOCALES_DIR / f"{lang}.yaml"
    return _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@functools.cache
def translations() -> gr.I18n:
    """The gr.I18n handed to launch(); "zh" also serves zh-CN/zh-TW browsers (their fallback chain)."""
    return gr.I18n(en=messages("en"), zh=messages("zh"), **{"zh-CN": messages("zh")})


def L(key: str) -> gr.i18n.I18nData:  # noqa: N802 (short on purpose: it wraps every label)
    """Static text translated in the browser; the key must exist in both locale files."""
    if key not in messages(DEFAULT):
        raise KeyError(f"i18n key {key!r} is missing from webui/locales/en.yaml")
    return translations()(key)


def normalize(value: str | None) -> str | None:
    """'zh-CN', 'zh_TW', 'zh' -> 'zh'; 'en-US' -> 'en'; anything else -> None."""
    if not value:
        return None
    base = value.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def request_language(request: Any = None) -> str:
    """The language of the request being handled: selector cookie, then Accept-Language, then English."""
    if request is None:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
    if request is None:
        return DEFAULT
    try:
        cookies = request.cookies or {}
        headers = request.headers or {}
    except (AttributeError, KeyError):
        return DEFAULT
    chosen = normalize(cookies.get(COOKIE))
    if chosen:
        return chosen
    for part in (headers.get("accept-language") or "").split(","):
        found = normalize(part.split(";")[0])
        if found:
            return found
    return DEFAULT


def t(key: str, lang: str | None = None, **values: Any) -> str:
    """`key` in `lang` (default: the current request's language), formatted with `values`."""
    lang = lang or request_language()
    text = messages(lang).get(key) or messages(DEFAULT).get(key)
    if text is None:
        log.warning("i18n key %r is missing", key)
        return key
    return text.format(**values) if values else text


# Injected at the top of the page's <head>, before Gradio's own scripts read navigator.language: the
# page then starts in the chosen language (?lang=zh|en, else the selector's cookie, else the browser's),
# so every label, Gradio's own included, is rendered in it from the first frame.
HEAD_SCRIPT = """<script>(() => {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const saved = (document.cookie.match(/(?:^|; )%(cookie)s=(en|zh)/) || [])[1];
  let lang = (fromUrl || saved || "").toLowerCase();
  if (!lang.startsWith("zh") && !lang.startsWith("en")) return;
  lang = lang.startsWith("zh") ? "zh" : "en";
  document.cookie = "%(cookie)s=" + lang + "; path=/; max-age=31536000; SameSite=Lax";
  const tag = lang === "zh" ? "zh-CN" : "en-US";
  Object.defineProperty(navigator, "language", { get: () => tag });
  Object.defineProperty(navigator, "languages", { get: () => [tag] });
})();</script>""".replace("%(cookie)s", COOKIE)

# The selector shows the page's language; choosing the other one stores it and reloads the page.
_INITIAL_JS = """() => (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en" """
_CHOOSE_JS = """
(lang) => {
  document.cookie = "%(cookie)s=" + lang + "; path=/; max-age=31536000; SameSite=Lax";
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) { url.searchParams.set("lang", lang); location.href = url.href; }
  else { location.reload(); }
  return lang;
}
""".replace("%(cookie)s", COOKIE)


def language_selector() -> gr.Radio:
    """English / 简体中文 switch; call wire_language(app, selector) once the Blocks is complete."""
    return gr.Radio(
        [(name, code) for code, name in LANGUAGES.items()],
        value=None,
        label=L("app.language"),
        container=False,
        elem_id="tb-language",
        min_width=240,
    )


def wire_language(app: gr.Blocks, selector: gr.Radio) -> None:
    private = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    app.load(None, None, [selector], js=_INITIAL_JS, **private)
    selector.input(None, [selector], [selector], js=_CHOOSE_JS, **private)


class LanguageScript:
    """ASGI middleware: puts HEAD_SCRIPT first in the page's <head> (GET of an HTML page only)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        from webui.guards import rewrite_html

        if scope["type"] != "http" or scope.get("method") != "GET":
            return await self.app(scope, receive, send)
        head = b"<head>" + HEAD_SCRIPT.encode()
        return await rewrite_html(self.app, scope, receive, send, lambda body: body.replace(b"<head>", head, 1))
