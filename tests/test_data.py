"""Importing Alpaca data: good files are stored as Parquet; bad ones get a precise error and change nothing."""

import json

import pytest
from sqlalchemy import func, select

from backend.data import DataError, import_file, load_rows, preview
from db import Dataset
from tests.conftest import EXAMPLES, write_alpaca

GOOD = {"instruction": "Say hi", "input": "", "output": "Hi!"}

BAD_FILES = [
    ("empty.json", b"", r"empty.json: the file is empty"),
    ("blank.jsonl", b"\n\n  \n", r"blank.jsonl: the file is empty"),
    ("array.json", b"[]", r"JSON array is empty"),
    (
        "broken.json",
        b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "c" "output": "d"}\n]',
        r"broken.json line 3",
    ),
    ("broken.jsonl", b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n', r"broken.jsonl line 2"),
    ("nooutput.json", json.dumps([GOOD, {"instruction": "x"}]).encode(), r"row 2: field 'output' is missing"),
    (
        "emptyout.json",
        json.dumps([GOOD, GOOD, {"instruction": "x", "output": "  "}]).encode(),
        r"row 3: field 'output' is empty",
    ),
    (
        "noinstr.json",
        json.dumps([GOOD, {"instruction": "", "output": "y"}]).encode(),
        r"row 2: field 'instruction' is empty",
    ),
    (
        "number.json",
        json.dumps([GOOD, {"instruction": "x", "output": 5}]).encode(),
        r"row 2: field 'output' must be text",
    ),
    ("notobj.json", json.dumps([GOOD, ["x", "y"]]).encode(), r"row 2: expected an object"),
    ("history.json", json.dumps([{**GOOD, "history": "oops"}]).encode(), r"row 1: field 'history'"),
    ("latin1.json", '[{"instruction": "caf\u00e9", "output": "x"}]'.encode("latin-1"), r"not valid UTF-8"),
    ("other.json", json.dumps([{"text": "hello"}]).encode(), r"could not detect the format"),
    ("object.json", b'{\n  "instruction": "a",\n  "output": "b"\n}\n', r"one JSON object; a dataset is an array"),
    ("deep.json", b"[" * 5000 + b"]" * 5000, r"(nested too deeply|expected an object)"),
    ("huge.json", json.dumps([{"instruction": "x", "output": "y" * 100_001}]).encode(), r"over the 100,000 limit"),
]


@pytest.mark.parametrize(("name", "content", "error"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_names_the_problem_and_writes_nothing(services, tmp_path, name, content, error):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=error):
        import_file(services.database, services.workspace, path)
    with services.database.session() as s:
        assert s.scalar(select(func.count(Dataset.id))) == 0
    assert list((services.workspace.root / "datasets").iterdir()) == []


def test_identity_example_imports_with_preview(services):
    ds = import_file(services.database, services.workspace, EXAMPLES / "identity.json", name="identity")
    assert ds.num_rows == len(json.loads((EXAMPLES / "identity.json").read_text()))
    assert ds.format == "alpaca" and ds.task == "sft"
    assert (services.workspace.dataset_dir(ds.id) / "original" / "identity.json").is_file()
    rows = load_rows(services.workspace, ds.id)
    assert rows[0]["messages"][-1]["role"] == "assistant"
    assert all("Tuna" in r["messages"][-1]["content"] for r in rows)
    shown = preview(services.workspace, ds.id, limit=5)
    assert len(shown) == 5 and set(shown[0]) == {"system", "prompt", "answer"}
    assert any("你" in r["prompt"] for r in preview(services.workspace, ds.id, limit=500))


def test_jsonl_utf16_system_input_and_history_convert(services, tmp_path):
    rows = [
        {"instruction": "Translate", "input": "你好", "output": "Hello", "system": "Be brief."},
        {"instruction": "And this?", "output": "Goodbye", "history": [["Translate 再见", "Goodbye"]]},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-16")
    ds = import_file(services.database, services.workspace, path)
    first, second = load_rows(services.workspace, ds.id)
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert first["messages"][1]["content"] == "Translate\n\n你好"
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user", "assistant"]


def test_duplicate_rows_are_counted_and_names_stay_unique(services, tmp_path):
    path = write_alpaca(tmp_path / "dup.json", [GOOD, GOOD, {"instruction": "b", "output": "c"}])
    first = import_file(services.database, services.workspace, path)
    second = import_file(services.database, services.workspace, path)
    assert first.stats["duplicate_rows"] == 1
    assert (first.name, second.name) == ("dup", "dup-2")
    with pytest.raises(DataError, match="already exists"):
        import_file(services.database, services.workspace, path, name="dup")


def test_single_row_jsonl_and_numeric_names(services, tmp_path):
    path = tmp_path / "7.jsonl"
    path.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    ds = import_file(services.database, services.workspace, path)
    assert (ds.name, ds.num_rows) == ("dataset-7", 1)  # "7" would read as an id
    with pytest.raises(DataError, match="all digits"):
        import_file(services.database, services.workspace, path, name="42")
