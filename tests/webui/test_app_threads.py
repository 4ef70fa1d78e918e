"""The app resolves transformers' names in its main thread before its other threads start: transformers 5
resolves them lazily, and two threads resolving them for the first time at once fail ("cannot import name
'AutoTokenizer' from 'transformers'"; the browser test met it as a Datasets tab token count beside a Train
tab estimate)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

THREADS = """
import threading
import app
app._resolve_transformers()  # what _serve_full and _serve_demo do before any thread starts
errors = []
def first_use(name):
    try:
        exec(f"from transformers import {name}")
        exec("from transformers import AutoConfig")
    except Exception as e:
        errors.append(repr(e))
names = ["AutoTokenizer", "AutoModelForSequenceClassification", "AutoModelForCausalLM", "AutoTokenizer"]
threads = [threading.Thread(target=first_use, args=(n,)) for n in names]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors or "ok")
"""


def test_handlers_importing_transformers_at_once_all_succeed():
    out = subprocess.run([sys.executable, "-c", THREADS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "ok", out.stdout
