"""Push an export folder to the Hugging Face Hub (huggingface_hub) when a token is configured (HF_TOKEN).

Checked before the export is written, so a missing token or an offline machine changes nothing.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


HUB_HOST = "huggingface.co"
REACH_SECONDS = 5.0


def check_can_push(repo_id: str) -> None:
    """Refuse (ValueError, one line) a push that cannot happen: bad repo id, no token, or offline."""
    if not REPO_ID.match(repo_id):
        raise ValueError(f"hub repo '{repo_id}' is not of the form owner/name")
    if not os.environ.get("HF_TOKEN"):
        raise ValueError("no Hugging Face token: set HF_TOKEN to push exports to the Hub; nothing was exported")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ValueError("the Hugging Face Hub is unreachable (HF_HUB_OFFLINE is set); nothing was exported or pushed")
    try:  # offline: say so now, not after minutes of exporting
        socket.create_connection((HUB_HOST, 443), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise ValueError(
            f"the Hugging Face Hub ({HUB_HOST}) is unreachable ({type(e).__name__}); nothing was exported or pushed"
        ) from None


def push(folder: Path, repo_id: str) -> str:
    """Upload the folder to a (private, created if missing) model repo; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ["HF_TOKEN"])
    try:
        api.create_repo(repo_id, private=True, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Tuneboard export")
    except Exception as e:  # network, auth: the export stays on disk either way
        raise ValueError(
            f"could not push to the Hugging Face Hub ({type(e).__name__}: {str(e)[:120]}); "
            f"the export is kept at {folder}"
        ) from None
    return f"https://huggingface.co/{repo_id}"
