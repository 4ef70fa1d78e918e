"""Two ASGI middlewares in front of Gradio's routes: a login wall and the demo's allow-list.

Gradio checks the login on most routes itself, but not on all of them (heartbeat, stream, reset,
cancel, run history...). LoginWall answers 401 to every request without a valid session, except what
the login page itself needs, so "every route needs a login" holds for routes a later Gradio adds too.
DemoGuard lets a demo serve only the page and its chat: no upload, no file, proxy or stream route.
Both are passed to Gradio with launch(app_kwargs={"middleware": [...]}).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

# What a browser needs to show the login form (the framework's own static files, no app data).
PUBLIC_EXACT = {
    "/",
    "/login",
    "/login/",
    "/logout",
    "/favicon.ico",
    "/theme.css",
    "/manifest.json",
    "/robots.txt",
    "/gradio_api/theme.css",
    "/gradio_api/login_check",
    "/gradio_api/login_check/",
    "/gradio_api/startup-events",  # launch() itself calls it once; it returns only true/false
}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/")

# Everything a demo page and its one API endpoint use; the rest of Gradio's routes answer 404.
DEMO_EXACT = PUBLIC_EXACT | {
    "/config",
    "/config/",
    "/gradio_api/info",
    "/gradio_api/info/",
    "/gradio_api/queue/join",
    "/gradio_api/queue/data",
    "/gradio_api/queue/status",
    "/gradio_api/startup-events",
    "/gradio_api/cancel",
    "/gradio_api/reset",
    "/gradio_api/app_id",
    "/gradio_api/user",
    "/gradio_api/token",
    "/gradio_api/call/chat",
    "/gradio_api/call/v2/chat",
}
DEMO_PREFIXES = (*PUBLIC_PREFIXES, "/gradio_api/heartbeat/", "/gradio_api/call/chat/", "/gradio_api/call/v2/chat/")


async def _answer(send: Callable, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def rewrite_html(app: ASGIApp, scope: Scope, receive: Callable, send: Callable, change) -> None:
    """Run `app`, passing an HTML response's body through `change(bytes) -> bytes` (other responses as is)."""
    start: dict = {}
    chunks: list[bytes] = []

    async def capture(message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            if not headers.get(b"content-type", b"").startswith(b"text/html"):
                start["passthrough"] = True
                return await send(message)
            start.update(message)
            return None
        if start.get("passthrough") or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return None
        body = change(b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None

    await app(scope, receive, capture)


# Gradio's login page still embeds the whole API description (endpoint names, docstrings, dropdown
# choices such as dataset names); before a login it is replaced by an empty one.
_API_INFO = re.compile(rb"<script>window\.gradio_api_info = .*?;</script>", re.DOTALL)


def _without_api_info(body: bytes) -> bytes:
    return _API_INFO.sub(b"<script>window.gradio_api_info = {};</script>", body)


def _path(scope: Scope) -> str:
    root = scope.get("root_path") or ""
    path = scope.get("path") or "/"
    return path[len(root) :] or "/" if root and path.startswith(root) else path


class LoginWall:
    """401 for any request without the session cookie of a logged-in user, outside PUBLIC_*."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = _path(scope)
        if _logged_in(scope):
            return await self.app(scope, receive, send)
        if path == "/" and scope["type"] == "http":
            return await rewrite_html(self.app, scope, receive, send, _without_api_info)
        if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        return await _answer(send, 401, "Not authenticated: sign in first")


def _logged_in(scope: Scope) -> bool:
    """The same check as Gradio's get_current_user: a session token Gradio issued at /login."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    cookie_id = getattr(app, "cookie_id", None)
    if tokens is None or cookie_id is None:
        return False
    cookies = _cookies(scope)
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return token is not None and tokens.get(token) is not None


def _cookies(scope: Scope) -> dict[str, str]:
    from http.cookies import SimpleCookie

    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is simply not a login
        return {}
    return {k: m.value for k, m in jar.items()}


class DemoGuard:
    """404 for every route a demo does not need: uploads, files, proxies, streams, other endpoints."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = _path(scope)
        if path in DEMO_EXACT or path.startswith(DEMO_PREFIXES):
            return await self.app(scope, receive, send)
        log.info("demo: refused %s %s", scope.get("method"), path[:200])
        return await _answer(send, 404, "Not available in this demo")
