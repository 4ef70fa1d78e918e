"""Importing, versions, duplicates, splits, deletion, preview and statistics of datasets."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import func, select

from backend.data import (
    DataError,
    ImportLimits,
    ImportOptions,
    delete_dataset,
    import_file,
    import_path,
    load_rows,
    page,
    preview,
)
from backend.data.stats import token_lengths
from db import Dataset, Run
from db.models import RunStatus
from tests.conftest import EXAMPLES, ROOT, write_alpaca

GOOD = ROOT / "tests" / "assets" / "good"
ROW = {"instruction": "Say hi", "input": "", "output": "Hi!"}


def test_identity_example_keeps_every_row_in_train(services):
    ds = import_file(services.database, services.workspace, EXAMPLES / "identity.json", name="identity")
    assert ds.num_rows == len(json.loads((EXAMPLES / "identity.json").read_text())) == 120
    assert ds.splits == {"train": 120} and (ds.format, ds.task, ds.version) == ("alpaca", "sft", 1)
    assert (services.workspace.dataset_dir(ds.id) / "original" / "identity.json").is_file()
    rows = load_rows(services.workspace, ds.id)
    assert all("Tuna" in r["messages"][-1]["content"] for r in rows)
    assert load_rows(services.workspace, ds.id, "validation") == []
    shown = preview(services.workspace, ds.id, limit=5)
    assert len(shown) == 5 and set(shown[0]) == {"system", "prompt", "answer"}
    assert any("你" in r["prompt"] for r in preview(services.workspace, ds.id, limit=500))


def test_preview_pages_do_not_overlap(services, tmp_path):
    path = write_alpaca(tmp_path / "sums.json", n=45)
    ds = import_file(services.database, services.workspace, path)
    pages = [page(services.workspace, ds.id, offset=o, limit=20) for o in (0, 20, 40)]
    assert [len(p) for p in pages] == [20, 20, 5]
    assert pages[1][0] == load_rows(services.workspace, ds.id)[20]
    assert page(services.workspace, ds.id, offset=100) == []


def test_identical_upload_is_detected_and_not_stored_twice(services, tmp_path):
    path = write_alpaca(tmp_path / "sums.json")
    first = import_path(services.database, services.workspace, path)[0]
    again = import_path(services.database, services.workspace, path)[0]
    assert first.created and not again.created and again.dataset.id == first.dataset.id
    assert "identical to dataset 'sums'" in again.message
    # the same rows as JSON Lines, under a new name: a new dataset that says what it duplicates
    jsonl = tmp_path / "copy.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in json.loads(path.read_text())), encoding="utf-8")
    named = import_path(services.database, services.workspace, jsonl, name="sums-copy")[0]
    assert named.created and named.dataset.sha256 == first.dataset.sha256
    assert named.dataset.stats["duplicate_of"] == {"id": first.dataset.id, "name": "sums"}
    assert "same content as dataset 'sums'" in named.message


def test_changed_upload_under_a_name_becomes_a_new_version(services, tmp_path):
    v1 = import_file(services.database, services.workspace, write_alpaca(tmp_path / "a.json", n=4), name="sums")
    with services.database.session() as s:
        s.add(
            Run(name="r", task="sft", model="m", method="lora", dataset_id=v1.id, config={}, status=RunStatus.completed)
        )
    v2 = import_file(services.database, services.workspace, write_alpaca(tmp_path / "b.json", n=6), name="sums")
    v3 = import_file(services.database, services.workspace, write_alpaca(tmp_path / "c.json", n=8), name="sums")
    assert [(d.name, d.version, d.parent_id, d.num_rows) for d in (v1, v2, v3)] == [
        ("sums", 1, None, 4),
        ("sums-v2", 2, v1.id, 6),
        ("sums-v3", 3, v2.id, 8),
    ]
    assert len(load_rows(services.workspace, v1.id)) == 4  # the run's rows are untouched


def test_duplicate_rows_are_reported_or_dropped(services, tmp_path):
    path = write_alpaca(tmp_path / "dup.json", [ROW, ROW, {"instruction": "b", "output": "c"}, ROW])
    kept = import_file(services.database, services.workspace, path)
    assert kept.stats["duplicate_rows"] == 2 and kept.num_rows == 4
    dropped = import_file(
        services.database, services.workspace, path, name="dedup", options=ImportOptions(drop_duplicates=True)
    )
    assert dropped.num_rows == 2 and dropped.stats["dropped_duplicates"] == 2


def test_rows_with_problems_stop_the_import_or_are_left_out_and_listed(services, tmp_path):
    good = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(5)]
    lines = [*good[:2], json.dumps({"instruction": "q", "output": ""}), '{"instruction": "cut off', *good[2:], "[1]"]
    path = tmp_path / "dump.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"dump.jsonl row 3: field 'output' is empty.*--skip-invalid") as refused:
        import_file(services.database, services.workspace, path)
    assert "format or the columns" not in str(refused.value)  # rows 1-2 were fine: not the whole file's fault
    first_bad = tmp_path / "first.jsonl"
    first_bad.write_text("\n".join([json.dumps({"q": "q", "a": "a"})] * 3) + "\n")
    with pytest.raises(DataError, match=r"first.jsonl row 1: .*choose the format or the columns by hand"):
        import_file(services.database, services.workspace, first_bad, options=ImportOptions(format="alpaca"))
    assert list((services.workspace.root / "datasets").iterdir()) == []

    ds = import_file(services.database, services.workspace, path, options=ImportOptions(skip_invalid=True))
    assert ds.num_rows == 5 and [r["messages"][0]["content"] for r in load_rows(services.workspace, ds.id)] == [
        f"q{i}" for i in range(5)
    ]
    assert ds.stats["invalid_rows"] == 3
    problems = ds.stats["invalid_examples"]
    assert [p.split(":")[0] for p in problems] == ["dump.jsonl row 3", "dump.jsonl line 4", "dump.jsonl row 8"]
    assert "invalid JSON" in problems[1] and "expected an object" in problems[2]

    cut = tmp_path / "cut.jsonl"  # a dump whose first line was cut off
    cut.write_text('{"instruction": "q0", "outp\n' + "\n".join(good[:3]) + "\n")
    ds = import_file(services.database, services.workspace, cut, options=ImportOptions(skip_invalid=True))
    assert ds.num_rows == 3 and ds.stats["invalid_examples"][0].startswith("cut.jsonl line 1: invalid JSON")
    text = tmp_path / "long.txt"
    text.write_text("short line\n" + "x" * 50 + "\nanother line\n")
    limits = ImportOptions(skip_invalid=True, limits=ImportLimits(max_row_chars=40))
    ds = import_file(services.database, services.workspace, text, options=limits)
    assert ds.num_rows == 2 and "long.txt line 2" in ds.stats["invalid_examples"][0]

    kinds = tmp_path / "kinds.jsonl"  # integer labels, then a text one: that row is left out, the kind kept
    kinds.write_text("".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(10)))
    kinds.write_text(kinds.read_text() + json.dumps({"text": "odd", "label": "spam"}) + "\n")
    opts = ImportOptions(skip_invalid=True, val_ratio=0, test_ratio=0)
    ds = import_file(services.database, services.workspace, kinds, options=opts)
    assert ds.num_rows == 10 and ds.stats["labels"] == ["0", "1"]
    assert "field 'label' is text but earlier rows have integer labels" in ds.stats["invalid_examples"][0]

    labels = tmp_path / "labels.csv"  # classification: a row without a label
    labels.write_text("text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(10)) + "no label,\n")
    ds = import_file(
        services.database,
        services.workspace,
        labels,
        options=ImportOptions(skip_invalid=True, val_ratio=0, test_ratio=0),
    )
    assert ds.num_rows == 10 and ds.stats["labels"] == ["a", "b"] and ds.stats["invalid_rows"] == 1

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "q", "output": ""}\n{"instruction": "", "output": "a"}\n')
    with pytest.raises(DataError, match="every row has a problem.*broken.jsonl row 1: field 'output' is empty"):
        import_file(services.database, services.workspace, broken, options=ImportOptions(skip_invalid=True))


def test_an_unrecognised_table_offers_its_columns_for_mapping(services, tmp_path):
    from backend.data.inspect import inspect_upload

    two = tmp_path / "two.csv"
    two.write_text("review,stars\ngreat,5\nbad,1\n")
    found = inspect_upload(two)
    assert (found["format"], found["text_column"], found["label_column"]) == ("", "review", "stars")
    assert "format not recognised" in found["note"]
    three = tmp_path / "three.csv"  # which of two other columns is the label is the person's choice
    three.write_text("review,stars,shop\ngreat,5,a\nbad,1,b\n")
    assert (inspect_upload(three)["text_column"], inspect_upload(three)["label_column"]) == ("review", "")
    with pytest.raises(DataError, match="only a text column \\('review'\\) is given; name the label column"):
        import_file(services.database, services.workspace, three, options=ImportOptions(text_column="review"))
    text = import_file(
        services.database, services.workspace, three, options=ImportOptions(format="text", text_column="review")
    )
    assert text.task == "sft" and text.num_rows == 2  # plain text, when asked for


def test_classification_split_is_stratified_and_seeded(services, tmp_path):
    rows = [f"text {i},{'a' if i % 4 else 'b'}" for i in range(200)]  # 150 a, 50 b
    path = tmp_path / "ab.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ds = import_file(services.database, services.workspace, path)
    assert ds.splits == {"train": 160, "validation": 20, "test": 20}
    assert ds.stats["label_counts"] == {
        "train": {"a": 120, "b": 40},
        "validation": {"a": 15, "b": 5},
        "test": {"a": 15, "b": 5},
    }
    again = import_file(services.database, services.workspace, path, name="ab-again")
    assert again.sha256 == ds.sha256  # seed 42 both times: the same split
    other = import_file(services.database, services.workspace, path, name="ab-seed", options=ImportOptions(seed=7))
    assert other.sha256 != ds.sha256
    texts = [{r["text"] for r in load_rows(services.workspace, ds.id, s)} for s in ("train", "validation", "test")]
    assert sum(map(len, texts)) == 200 and not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_sft_can_be_split_on_request(services, tmp_path):
    ds = import_file(
        services.database,
        services.workspace,
        write_alpaca(tmp_path / "s.json", n=20),
        options=ImportOptions(val_ratio=0.25),
    )
    assert ds.splits == {"train": 15, "validation": 5}


def test_delete_rules(services, tmp_path):
    ds = import_file(services.database, services.workspace, write_alpaca(tmp_path / "d.json"))
    with services.database.session() as s:
        run = Run(name="r", task="sft", model="m", method="lora", dataset_id=ds.id, config={}, status=RunStatus.running)
        s.add(run)
    with pytest.raises(DataError, match=rf"used by run\(s\) #{run.id} that are queued or running"):
        delete_dataset(services.database, services.workspace, "d")
    assert services.workspace.dataset_dir(ds.id).is_dir()
    with services.database.session() as s:
        s.get(Run, run.id).status = RunStatus.completed
    out = delete_dataset(services.database, services.workspace, str(ds.id))
    assert out["detached_runs"] == [run.id] and "can no longer be resumed" in out["message"]
    assert not services.workspace.dataset_dir(ds.id).exists()
    with services.database.session() as s:
        assert s.scalar(select(func.count(Dataset.id))) == 0
        assert s.get(Run, run.id).dataset_id is None  # the run's record and results stay
    assert list((services.workspace.root / "datasets").iterdir()) == []


def test_progress_is_reported(services, tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({**ROW, "output": str(i)}) + "\n" for i in range(12_000)), encoding="utf-8")
    seen = []
    ds = import_file(services.database, services.workspace, path, progress=lambda f, what: seen.append((f, what)))
    assert ds.num_rows == 12_000
    assert seen[-1] == (1.0, "done") and any("line 10,000" in w for _, w in seen)
    assert all(0 <= f <= 1 for f, _ in seen)


def test_token_lengths_with_a_real_tokenizer_and_the_fallback(services, tiny_model, shared_models_dir):
    ds = import_file(services.database, services.workspace, EXAMPLES / "identity.json")
    rows = load_rows(services.workspace, ds.id)
    exact = token_lengths(rows, str(tiny_model), shared_models_dir, cutoff=40)
    assert exact["exact"] and exact["rows_measured"] == 120
    assert sum(b["rows"] for b in exact["histogram"]) == 120
    assert exact["over_cutoff"] == sum(1 for n in _lengths(rows, tiny_model) if n > 40)
    estimate = token_lengths(rows, "SmolLM2-135M-Instruct", shared_models_dir / "empty", cutoff=40)
    assert not estimate["exact"] and "not converted yet" in estimate["note"]


def _lengths(rows, model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return [len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=False)) for r in rows]


def test_labels_are_sorted_class_names(services):
    ds = import_file(services.database, services.workspace, GOOD / "reviews.csv")
    assert ds.stats["labels"] == ["negative", "neutral", "positive"]
    counts = Counter(r["label"] for s in ds.splits for r in load_rows(services.workspace, ds.id, s))
    assert counts == {"positive": 10, "negative": 10, "neutral": 10}


def test_numeric_names(services, tmp_path):
    path = tmp_path / "7.jsonl"
    path.write_text(json.dumps(ROW) + "\n", encoding="utf-8")
    ds = import_file(services.database, services.workspace, path)
    assert (ds.name, ds.num_rows) == ("dataset-7", 1)  # "7" would read as an id
    with pytest.raises(DataError, match="all digits"):
        import_file(services.database, services.workspace, write_alpaca(tmp_path / "x.json"), name="42")


def test_concurrent_imports_under_one_name_become_versions(services, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    paths = [write_alpaca(tmp_path / f"c{i}.json", n=3 + i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        done = list(pool.map(lambda p: import_file(services.database, services.workspace, p, name="shared"), paths))
    assert sorted(d.version for d in done) == [1, 2, 3]
    assert sorted(d.name for d in done) == ["shared", "shared-v2", "shared-v3"]


def test_web_paths_stay_under_the_data_roots(services, tmp_path, monkeypatch):
    from backend.data.hub import is_hub_id
    from backend.data.options import check_server_path

    monkeypatch.setenv("TUNEBOARD_DATA_ROOTS", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "link.json").symlink_to("/etc/passwd")
    check_server_path(str(tmp_path / "data" / "x.json"), services.workspace.root)
    for refused in ("/etc/passwd", str(tmp_path / "data" / ".." / "other.json"), str(tmp_path / "data" / "link.json")):
        with pytest.raises(DataError, match="the app may only read paths under"):
            check_server_path(refused, services.workspace.root)
    assert is_hub_id("tatsu-lab/alpaca") and is_hub_id("hf://datasets/imdb")
    assert not is_hub_id("data/train/x.jsonl") and not is_hub_id("./a")


def test_a_line_over_the_row_limit_is_named_in_text_and_json_lines(tmp_path):
    from backend.data.readers import read_json_records, read_text_lines

    (tmp_path / "a.txt").write_text("short\n" + "x" * 50 + "\n")
    (tmp_path / "a.jsonl").write_text('{"text": "short"}\n' + json.dumps({"text": "x" * 50}) + "\n")
    for read, name in ((read_text_lines, "a.txt"), (read_json_records, "a.jsonl")):
        with pytest.raises(
            DataError, match=rf"^{name} line 2: the row has \d+ characters, over the 40 limit;.*MAX_ROW"
        ):
            list(read(tmp_path / name, 40))
