"""The app as a user starts it, on a free port with a throw-away workspace, for the e2e tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

START_TIMEOUT = 90


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_workers(workspace: Path) -> None:
    """Training workers run in their own session and outlive the app on purpose; end ours."""
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            argv = (proc_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"backend.runs.worker" in argv and str(workspace).encode() in argv:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(proc_dir.name), signal.SIGKILL)


def _log_tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`python app.py --workspace TMP --port FREE` as a user starts it; yields its URL."""
    with running_app(tmp_path_factory.mktemp("e2e")) as app:
        yield app.url


@dataclass
class RunningApp:
    url: str
    workspace: Path
    log: Path


@contextlib.contextmanager
def running_app(tmp: Path, *args: str, env: dict[str, str] | None = None, workspace: Path | None = None):
    """`python app.py --workspace WS --port FREE ARGS` until the block ends; yields a RunningApp."""
    workspace = workspace or tmp / "ws"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--workspace", str(workspace), "--port", str(port), *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app exited with {proc.returncode} before serving\n{_log_tail(log)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app did not answer 200 on {url} within {START_TIMEOUT}s\n{_log_tail(log)}")
            time.sleep(0.5)
        yield RunningApp(url, workspace, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        _stop_workers(workspace)
        print(f"\n--- tail of {log} ---\n{_log_tail(log)}")  # pytest shows it when a test failed
