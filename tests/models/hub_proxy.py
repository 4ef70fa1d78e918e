"""A real HTTP proxy on 127.0.0.1 in front of the local hub (olah) that behaves as the Hugging Face Hub
does where olah cannot: gated repositories answer file requests without the right token with
401 + `X-Error-Code: GatedRepo`, and a connection can be dropped half-way through a file once
(the hub client then resumes it with a Range request). It records every request it answers, with the status.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import httpx

RESOLVE = re.compile(r"^/(?:models/)?(?P<repo>[^/]+/[^/]+)/resolve/[^/]+/(?P<file>.+)$")
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    status: int


@dataclass
class HubProxy:
    upstream: str
    gated: dict[str, str] = field(default_factory=dict)  # repo id -> the token that opens it
    drop_once: set[str] = field(default_factory=set)  # file names whose first full GET is cut half-way
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def start(self) -> HubProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
                proxy._handle(self, body=False)

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self, body=True)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        match = RESOLVE.match(urlparse(h.path).path)
        wanted = match and self.gated.get(match["repo"])
        if wanted and h.headers.get("authorization") != f"Bearer {wanted}":
            message = f"Access to model {match['repo']} is restricted. You must have access to it and be authenticated."
            self.seen.append(Seen(h.command, h.path, h.headers.get("range"), 401))
            self._reply(h, 401, {"X-Error-Code": "GatedRepo", "X-Error-Message": message}, b"", h.command)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        with (
            httpx.Client(timeout=60) as client,
            client.stream(h.command, self.upstream + h.path, headers=headers) as response,
        ):
            out = {k: v for k, v in response.headers.items() if k.lower() not in HOP - {"content-length"}}
            if "location" in out:  # olah points at itself: keep the client on the proxy
                out["location"] = out["location"].replace(self.upstream, self.url)
            self.seen.append(Seen(h.command, h.path, h.headers.get("range"), response.status_code))
            data = response.read() if body else b""
        cut = body and match and match["file"] in self.drop_once and not h.headers.get("range")
        if cut:
            self.drop_once.discard(match["file"])
            out["content-length"] = str(len(data))
            h.send_response(response.status_code)
            for k, v in out.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])  # then the connection drops
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        self._reply(h, response.status_code, out, data, h.command)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes, method: str) -> None:
        h.send_response(status)
        for k, v in headers.items():
            if k.lower() != "content-length" or method == "HEAD":
                h.send_header(k, v)
        if method != "HEAD":
            h.send_header("content-length", str(len(data)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)
