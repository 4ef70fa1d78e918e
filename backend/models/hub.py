"""Models from a hub: the Hugging Face Hub or a mirror of it (HF_ENDPOINT), or ModelScope (TUNEBOARD_HUB=modelscope).

A hub id is `org/name` with an optional `@revision` (`google-bert/bert-base-chinese@main`). Models live in
the hub client's own cache (~/.cache/huggingface/hub, or HF_HUB_CACHE), so a cache filled elsewhere works
offline; `backend.models.downloads` fetches what is missing, as a background job.

    ref = parse_hub_id("Qwen/Qwen2.5-0.5B-Instruct@main")
    local_snapshot(ref)          # the complete snapshot folder, or None
    offline_reason()             # why the hub cannot be reached now (HF_HUB_OFFLINE, no connection), or None
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

HUBS = ("hf", "modelscope")
HF_ENDPOINT = "https://huggingface.co"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
_REVISION = re.compile(r"[\w./-]{1,200}")


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str = ""  # "" is the hub's default branch (main)
    hub: str = "hf"

    @property
    def name(self) -> str:
        """How runs and lists name the model: the id as the person typed it."""
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


class NotOnDisk(ValueError):
    """A hub model that must be downloaded first (`models pull`); `train` queues that download itself."""

    def __init__(self, ref: HubRef, why: str):
        super().__init__(why)
        self.ref = ref


def hub_choice(hub: str | None = None) -> str:
    """The hub to use: the one given, else $TUNEBOARD_HUB, else hf."""
    chosen = (hub or os.environ.get("TUNEBOARD_HUB") or "hf").strip().lower()
    if chosen not in HUBS:
        raise ValueError(f"hub '{chosen}' is not one of {', '.join(HUBS)} (setting --hub or $TUNEBOARD_HUB)")
    return chosen


def parse_hub_id(name: str, hub: str | None = None, revision: str = "") -> HubRef | None:
    """`org/name[@revision]` as a HubRef; None when `name` is not shaped like a hub id (a bundled name)."""
    repo_id, _, at = name.strip().partition("@")
    if not _HUB_ID.fullmatch(repo_id) or ".." in repo_id:
        return None
    revision = revision or at
    if revision and not _REVISION.fullmatch(revision):
        raise ValueError(f"model '{name}': revision '{revision}' is not a branch, tag or commit name")
    return HubRef(repo_id, revision, hub_choice(hub))


def endpoint() -> str:
    """Where the Hugging Face client downloads from: $HF_ENDPOINT (a mirror) or huggingface.co, read now
    (huggingface_hub reads it once at import; tests and the app may set it later)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or HF_ENDPOINT


def hub_cache() -> Path:
    """The Hugging Face cache folder, read now: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def modelscope_endpoint() -> str:
    """Where the modelscope client downloads from: $MODELSCOPE_DOMAIN (its own setting) or modelscope.cn."""
    domain = os.environ.get("MODELSCOPE_DOMAIN", "").strip().rstrip("/") or "modelscope.cn"
    return domain if "://" in domain else f"https://{domain}"


def token() -> str | None:
    """$HF_TOKEN for gated and private models, or None (the client then uses a saved login, if any)."""
    return os.environ.get("HF_TOKEN") or None


def offline_reason(hub: str = "hf", timeout: float = 3.0) -> str | None:
    """Why downloads cannot work now, in words, or None. A closed port or an unknown host answers at once;
    a silent network within `timeout` seconds, so a refusal never hangs."""
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # huggingface_hub honours both
        if hub == "hf" and os.environ.get(flag, "").lower() in ("1", "true", "yes", "on"):
            return f"{flag} is set"
    url = endpoint() if hub == "hf" else modelscope_endpoint()
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    problem: list[str] = [f"no answer within {timeout:g} s"]

    def connect() -> None:  # in a thread: a name lookup ignores the socket's timeout and may hang
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
            problem[0] = ""
        except OSError as e:
            problem[0] = e.strerror or e.__class__.__name__

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return f"{url} cannot be reached ({problem[0]})" if problem[0] else None


_RECENT: dict[str, tuple[float, str | None]] = {}


def recent_offline_reason(hub: str = "hf", max_age: float = 60.0, timeout: float = 2.0) -> str | None:
    """`offline_reason`, asked at most once a minute: a page that lists models on every visit (the
    Models tab) answers at once instead of waiting up to `timeout` seconds on a silent network."""
    key = "|".join(  # a changed endpoint or offline flag is asked again
        [hub, endpoint() if hub == "hf" else modelscope_endpoint()]
        + [os.environ.get(f, "") for f in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")]
    )
    now = time.monotonic()
    checked = _RECENT.get(key)
    if checked is None or now - checked[0] > max_age:
        checked = _RECENT[key] = (now, offline_reason(hub, timeout))
    return checked[1]


def refuse_offline(e: NotOnDisk) -> HubRef:
    """The model to download, or a one-line ValueError: the hub cannot be reached (within seconds), or it
    answers that the id or revision does not exist."""
    why = offline_reason(e.ref.hub) or (_probe(e.ref) if e.ref.hub == "hf" else None)
    if why:
        raise ValueError(
            f"model '{e.ref.name}' is not on disk and cannot be downloaded now: {why}. Copy it into the "
            "Hugging Face cache (HF_HOME) or pass a local folder"
        )
    return e.ref


def _probe(ref: HubRef, timeout: float = 3.0) -> str | None:
    """Ask the hub about the model before queueing its download: None when it is there; a wrong id or
    revision is a ValueError; no answer in time (a proxy that accepts and stays silent) is the reason.
    Plain HTTP to the hub's API, so huggingface_hub's offline flag, read once at import, plays no part."""
    import httpx

    def status(revision: str) -> int:
        url = f"{endpoint()}/api/models/{ref.repo_id}/revision/{quote(revision, safe='')}"
        headers = {"authorization": f"Bearer {token()}"} if token() else {}
        return httpx.get(url, headers=headers, timeout=timeout, follow_redirects=True).status_code

    try:
        code = status(ref.revision or "main")
        if code == 200:
            return None
        if code in (401, 403, 404):  # the Hub answers 401 for a repo that is missing or private
            if ref.revision and status("main") == 200:
                raise ValueError(f"{ref.repo_id} has no revision '{ref.revision}' on {endpoint()}: use one it has")
            raise ValueError(
                f"model {ref.repo_id} was not found on {endpoint()}: check the id (org/name), or set HF_TOKEN "
                "if it is private"
            )
    except httpx.HTTPError as err:
        return f"{endpoint()} did not answer ({type(err).__name__})"
    return f"{endpoint()} answered HTTP {code} about {ref.repo_id}"


def explain(e: BaseException, ref: HubRef) -> str:
    """One line a person can act on, for each way a download fails."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    where = endpoint() if ref.hub == "hf" else "ModelScope"
    if isinstance(e, GatedRepoError):
        return (
            f"{ref.repo_id} is gated: accept its licence on the model's page, then set HF_TOKEN to a token "
            "of that account"
        )
    if isinstance(e, RevisionNotFoundError) or (isinstance(e, RepositoryNotFoundError) and _exists_without(ref)):
        return f"{ref.repo_id} has no revision '{ref.revision}' on {where}: use a branch, tag or commit it has"
    if isinstance(e, RepositoryNotFoundError):
        return f"model {ref.repo_id} was not found on {where}: check the id (org/name), or set HF_TOKEN if private"
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return f"the disk is full while downloading {ref.name}: free space, then pull again (it resumes)"
    return f"{ref.name} could not be downloaded from {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"


def _exists_without(ref: HubRef) -> bool:
    """Whether the repo is there at its default branch (some mirrors answer a missing revision with a 404
    for the whole repo)."""
    from huggingface_hub import HfApi

    if not ref.revision or ref.hub != "hf":
        return False
    try:
        HfApi(endpoint=endpoint(), token=token()).model_info(ref.repo_id, revision="main")
    except Exception:
        return False
    return True


def local_snapshot(ref: HubRef) -> Path | None:
    """The model's complete folder in the hub client's cache, or None (not there, or a download unfinished)."""
    if ref.hub == "modelscope":
        folder = modelscope_cache() / ref.repo_id
        return folder if is_complete(folder) else None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(
            snapshot_download(ref.repo_id, revision=ref.revision or None, cache_dir=hub_cache(), local_files_only=True)
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return folder if is_complete(folder) else None


def is_complete(folder: Path) -> bool:
    """A folder a run can load: config.json and every weights file its index names (a download stopped
    halfway leaves some missing; huggingface_hub links a file into the snapshot only once it is whole)."""
    if not (folder / "config.json").is_file():
        return False
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError):
            return False
        if not all((folder / shard).is_file() for shard in shards):
            return False
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")) or (folder / "model.gguf").is_file()


def modelscope_cache() -> Path:
    """Where Tuneboard keeps ModelScope models: $MODELSCOPE_CACHE/models or ~/.cache/modelscope/models."""
    root = os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope"
    return Path(root) / "models"


def cached_models() -> list[dict[str, Any]]:
    """Models on disk in the hub caches (huggingface_hub's cache scan, then ModelScope's folder): id,
    revisions, path, size and whether it is a causal LM (the Playground chats with those)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    out: list[dict[str, Any]] = []
    try:
        repos = scan_cache_dir(hub_cache()).repos
    except CacheNotFound:
        repos = frozenset()
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        complete = [r for r in repo.revisions if is_complete(Path(r.snapshot_path))]
        if not complete:
            continue
        newest = max(complete, key=lambda r: r.last_modified)
        out.append(_entry(repo.repo_id, "hf", Path(newest.snapshot_path), repo.size_on_disk, sorted(newest.refs)))
    if modelscope_cache().is_dir():
        for folder in sorted(modelscope_cache().glob("*/*")):
            if is_complete(folder):
                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                out.append(_entry(f"{folder.parent.name}/{folder.name}", "modelscope", folder, size, []))
    return out


def _entry(repo_id: str, hub: str, path: Path, size: int, refs: list[str]) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    archs = config.get("architectures") or []
    return {
        "id": repo_id,
        "hub": hub,
        "refs": refs,
        "path": str(path),
        "size_mb": round(size / 2**20, 1),
        "architecture": archs[0] if archs else "",
        "causal_lm": any(a.endswith("ForCausalLM") for a in archs),
        "text_encoder": any(a.endswith(("ForSequenceClassification", "ForMaskedLM")) for a in archs),
        "image_classifier": any(a.endswith("ForImageClassification") for a in archs),
    }


def delete_cached(ref: HubRef) -> dict[str, Any]:
    """Remove a model from the hub cache (every revision); a ValueError when it is not there."""
    import shutil

    if ref.hub == "modelscope":
        folder = modelscope_cache() / ref.repo_id
        if not folder.is_dir():
            raise ValueError(f"model '{ref.repo_id}' is not on disk (ModelScope cache {modelscope_cache()})")
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        return {"id": ref.repo_id, "freed_mb": round(size / 2**20, 1)}
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        repos = [r for r in scan_cache_dir(hub_cache()).repos if r.repo_id == ref.repo_id and r.repo_type == "model"]
    except CacheNotFound:
        repos = []
    if not repos:
        raise ValueError(f"model '{ref.repo_id}' is not on disk; `models list` shows the models there")
    size = repos[0].size_on_disk
    shutil.rmtree(repos[0].repo_path)  # every revision, the blobs and any unfinished (.incomplete) download
    return {"id": ref.repo_id, "freed_mb": round(size / 2**20, 1)}
