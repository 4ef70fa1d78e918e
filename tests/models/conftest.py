"""A real Hub-compatible server on 127.0.0.1: olah, serving git repositories from a folder, offline.

`local_hub` starts `olah` (pinned in requirements-dev.txt) with `mirrors-path` = a folder laid out as
`<folder>/models/<org>/<name>`, each a git repository made with `git init` + `git commit`, and
`offline = true`: it never reaches the internet. HF_ENDPOINT points at it and HF_HUB_CACHE at an empty
folder for the whole session, so every download (in the test or in a download process) goes through the
real huggingface_hub client to it (for the tests that use `local_hub`; the rest of the session stays offline).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

BIG_MB = 32  # large enough that a download is still running when a test cancels or kills it


@dataclass
class LocalHub:
    url: str
    mirrors: Path
    cache: Path
    log: Path

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)


def _git_repo(folder: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "model"], cwd=folder, check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_hub(hub_server: LocalHub, monkeypatch) -> LocalHub:
    """The server, with this test (and the processes it starts) pointed at it and online."""
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_server.cache))
    for offline in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # huggingface_hub honours both
        monkeypatch.delenv(offline, raising=False)
    return hub_server


GATED_TOKEN = "hf_tuneboard_test_token"


@pytest.fixture
def proxied_hub(local_hub: LocalHub, monkeypatch):
    """The local hub behind hub_proxy.HubProxy (tiny/gated needs GATED_TOKEN), with HF_ENDPOINT at the proxy."""
    from tests.models.hub_proxy import HubProxy

    proxy = HubProxy(local_hub.url, gated={"tiny/gated": GATED_TOKEN}).start()
    monkeypatch.setenv("HF_ENDPOINT", proxy.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory, tiny_model, tiny_vit) -> LocalHub:
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("hub")
    mirrors = root / "mirrors"
    chat = mirrors / "models" / "tiny" / "chat"
    shutil.copytree(tiny_model, chat)
    _git_repo(chat)
    gated = mirrors / "models" / "tiny" / "gated"  # gated by the proxy (hub_proxy.py), as the Hub gates Llama
    shutil.copytree(tiny_model, gated)
    _git_repo(gated)
    vit = mirrors / "models" / "tiny" / "vit"  # an image classifier, as google/vit-base-patch16-224 is
    shutil.copytree(tiny_vit, vit)
    _git_repo(vit)
    big = mirrors / "models" / "tiny" / "big"
    shutil.copytree(tiny_model, big)
    torch.manual_seed(0)  # random bytes: git cannot compress them, so the download takes a few seconds
    save_file({"noise": torch.randn(BIG_MB * 2**18)}, big / "noise.safetensors")
    _git_repo(big)

    port = _free_port()
    config = root / "olah.toml"
    config.write_text(
        f"""[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{root / "repos"}"
mirrors-path = ["{mirrors}"]
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"

[accessibility]
offline = true
"""
    )
    log = root / "olah.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "-c", str(config), "--log-path", str(root / "logs")],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/api/models/tiny/chat", timeout=2)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"olah did not start:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    cache = root / "hf-cache"
    cache.mkdir()
    yield LocalHub(url, mirrors, cache, log)
    proc.terminate()  # the olah process this fixture started, by its pid
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
