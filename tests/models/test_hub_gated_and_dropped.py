"""What the Hub does that olah's mirror mode does not, through a real proxy in front of it (hub_proxy.py):
a gated model refused without its token and pulled with it; a connection dropped mid-file resumed."""

import hashlib
import os
from pathlib import Path

from tests.conftest import cli, cli_json
from tests.models.conftest import BIG_MB, GATED_TOKEN
from tests.models.test_downloads import cli_env


def test_a_gated_model_is_refused_in_one_line_without_its_token_and_pulled_with_it(workspace, proxied_hub):
    hub = proxied_hub
    proc = cli(workspace, "models", "pull", "tiny/gated", "--wait", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "tiny/gated is gated: accept its licence" in line and "HF_TOKEN" in line
    files = [s.status for s in hub.seen if "/tiny/gated/resolve/" in s.path]
    assert files and set(files) == {401}  # the hub refused every file request: nothing was handed out
    repo = Path(os.environ["HF_HUB_CACHE"]) / "models--tiny--gated"
    assert not list(repo.glob("snapshots/*/config.json")) and not list(repo.glob("blobs/*.incomplete"))
    [failed] = cli_json(workspace, "models", "downloads")
    assert failed["status"] == "failed" and "is gated" in failed["reason"]

    proc = cli_env(workspace, "models", "pull", "tiny/gated", "--wait", "--json", HF_TOKEN="hf_wrong")
    assert proc.returncode == 2 and "is gated" in proc.stderr
    proc = cli_env(workspace, "models", "pull", "tiny/gated", "--wait", "--json", HF_TOKEN=GATED_TOKEN)
    assert proc.returncode == 0, proc.stderr
    assert '"status": "completed"' in proc.stdout and list(repo.glob("snapshots/*/config.json"))
    assert 200 in [s.status for s in hub.seen if "/tiny/gated/resolve/" in s.path]  # opened by the token


def test_a_connection_dropped_mid_file_resumes_where_it_stopped(workspace, local_hub, proxied_hub):
    local_hub.clear_cache()
    proxied_hub.drop_once.add("noise.safetensors")
    pulled = cli_json(workspace, "models", "pull", "tiny/big", "--wait", timeout=300)
    assert pulled["status"] == "completed"
    gets = [s for s in proxied_hub.seen if s.method == "GET" and s.path.endswith("/noise.safetensors")]
    assert len(gets) == 2 and gets[0].range is None  # cut half-way, then asked again ...
    start = int(gets[1].range.removeprefix("bytes=").split("-")[0])
    assert 0 < start <= BIG_MB * 2**20 // 2  # ... from where the client stopped receiving, not from the start
    got = Path(pulled["path"], "noise.safetensors").read_bytes()
    source = (local_hub.mirrors / "models" / "tiny" / "big" / "noise.safetensors").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(source).digest()


def test_a_download_that_would_fill_the_disk_is_refused_before_it_writes(workspace, local_hub):
    local_hub.clear_cache()
    proc = cli_env(workspace, "models", "pull", "tiny/big", "--wait", "--json", TUNEBOARD_MIN_FREE_GB="1e9")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "tiny/big needs 0.03 GB more and" in line and "keep at least 1e+09 GB free" in line
    assert not list(local_hub.cache.glob("models--tiny--big/blobs/*"))  # nothing written
