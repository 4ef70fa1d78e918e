"""An OpenAI-compatible chat endpoint as the judge: `--judge openai:MODEL`, configured by two settings.

    TUNEBOARD_JUDGE_URL=http://127.0.0.1:8000/v1      # the server's base URL (…/chat/completions is appended)
    TUNEBOARD_JUDGE_KEY_ENV=OPENAI_API_KEY            # the name of the variable that holds the key (optional)

The judge is asked the same questions as a local one (backend/evaluate/judge.py), greedily (temperature 0),
and its reply is read for "Verdict: X" with X one of the allowed options; a reply without one is no verdict:
pairwise that order counts as disagreeing (a tie), a rubric verdict fails the evaluation with the reply quoted.
"""

from __future__ import annotations

import os
import re
from typing import Any

from backend.evaluate.judge import OPTIONS, SYSTEM, Judge

PREFIX = "openai:"
URL_ENV, KEY_ENV = "TUNEBOARD_JUDGE_URL", "TUNEBOARD_JUDGE_KEY_ENV"
TIMEOUT_S = 120.0


def settings(ref: str) -> tuple[str, str, str | None]:
    """(base URL, model name, key) for `openai:MODEL`, or a ValueError saying what to set."""
    model = ref.removeprefix(PREFIX).strip()
    if not model:
        raise ValueError("setting 'judge': write openai:MODEL, the model name the endpoint serves")
    url = os.environ.get(URL_ENV, "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"setting 'judge': {ref} needs {URL_ENV} set to the endpoint's base URL, e.g. http://127.0.0.1:8000/v1"
        )
    key = None
    if os.environ.get(KEY_ENV):
        name = os.environ[KEY_ENV]
        key = os.environ.get(name)
        if not key:
            raise ValueError(f"setting 'judge': {KEY_ENV} names {name}, which is not set; export the key there")
    return url, model, key


class EndpointJudge(Judge):
    """Judge's questions, sent to an OpenAI-compatible /chat/completions instead of a local model."""

    def __init__(self, ref: str, mode: str, rubric_text: str) -> None:
        super().__init__(model=None, tokenizer=None, mode=mode, rubric_text=rubric_text)
        self.url, self.name, self.key = settings(ref)

    def _ask(self, text: str, options: list[str] | None = None, reason: bool = True) -> dict[str, Any]:
        import httpx

        labels = OPTIONS[self.mode]
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        body = {
            "model": self.name,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": 96,
        }
        try:
            reply = httpx.post(f"{self.url}/chat/completions", json=body, headers=headers, timeout=TIMEOUT_S)
            reply.raise_for_status()
            content = str(reply.json()["choices"][0]["message"]["content"] or "")
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
            raise ValueError(f"the judge endpoint {self.url} did not answer: {e}") from e
        found = re.search(r"verdict\s*:\s*\**\s*(" + "|".join(map(re.escape, labels)) + r")\b", content, re.I)
        reason_match = re.search(r"reason\s*:\s*(.+)", content, re.I)
        why = reason_match.group(1).strip() if reason_match else content.strip().splitlines()[-1:] or [""]
        why = why if isinstance(why, str) else why[0]
        if found is None:
            if self.mode == "pairwise":  # no verdict in this order: it cannot agree with the other one
                return {"verdict": None, "reason": f"no verdict in the reply: {content[:200]!r}", "probabilities": {}}
            raise ValueError(f"the judge endpoint's reply has no 'Verdict: {'/'.join(labels)}': {content[:200]!r}")
        return {"verdict": found.group(1).upper(), "reason": why, "probabilities": {}}
