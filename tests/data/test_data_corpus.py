"""Every hostile or malformed file in tests/assets/bad fails with its expected message and changes nothing.

The table is tests/assets/bad/expected.json (written by tests/assets/make_assets.py). A sample also
goes through the CLI: exit code 2, one line on stderr, no traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.data import DataError, ImportOptions, import_path
from db import Dataset
from tests.conftest import ROOT, cli

BAD = ROOT / "tests" / "assets" / "bad"
CASES = json.loads((BAD / "expected.json").read_text())
CLI_SAMPLE = [
    c for c in CASES if c["file"] in {"latin1.json", "cls_ragged.csv", "zip_dotdot.zip", "images_bad_files.zip"}
]


def _nothing_written(services) -> None:
    with services.database.session() as s:
        assert s.scalar(select(func.count(Dataset.id))) == 0
    assert list((services.workspace.root / "datasets").iterdir()) == []


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert all((BAD / c["file"]).exists() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_file_gets_its_message_and_writes_nothing(services, monkeypatch, case):
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(DataError) as caught:
        import_path(
            services.database, services.workspace, BAD / case["file"], options=ImportOptions(**case.get("options", {}))
        )
    assert case["error"] in str(caught.value)
    assert "\n" not in str(caught.value)
    _nothing_written(services)


@pytest.mark.parametrize("case", CLI_SAMPLE, ids=[c["file"] for c in CLI_SAMPLE])
def test_cli_exits_2_with_one_line(workspace, case):
    proc = cli(workspace, "datasets", "add", str(BAD / case["file"]), "--json")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and case["error"] in proc.stderr
    assert list((workspace / "datasets").iterdir()) == []


def test_upload_over_the_limit_is_refused_before_reading(services, tmp_path):
    from backend.data import ImportLimits

    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(3 * 1024**2)  # sparse: 3 MB of nothing, never read
    limits = ImportLimits(max_upload_bytes=2 * 1024**2)
    with pytest.raises(DataError, match=r"big.jsonl: 3 MB is over the 2 MB upload limit"):
        import_path(services.database, services.workspace, big, options=ImportOptions(limits=limits))
    _nothing_written(services)
    assert os.environ.get("TUNEBOARD_MAX_UPLOAD_MB") is None
    assert Path(big).stat().st_size == 3 * 1024**2
