"""Good files in every format import with the right rows, task, columns and splits (tests/assets/good)."""

from __future__ import annotations

import json

import pytest

from backend.data import ImportOptions, import_file, import_path, load_rows
from backend.data.errors import DataError
from tests.conftest import ROOT

GOOD = ROOT / "tests" / "assets" / "good"

# file, options, format, task, {split: rows}
CASES = [
    ("alpaca.json", {}, "alpaca", "sft", {"train": 5}),
    ("alpaca_bom.jsonl", {}, "alpaca", "sft", {"train": 5}),
    ("alpaca_utf16.jsonl", {}, "alpaca", "sft", {"train": 5}),
    ("sharegpt.json", {}, "sharegpt", "sft", {"train": 3}),
    ("messages.jsonl", {}, "messages", "sft", {"train": 4}),
    ("pretrain.txt", {}, "text", "sft", {"train": 3}),
    ("pretrain.jsonl", {}, "text", "sft", {"train": 7}),
    ("reviews.csv", {}, "classification", "text-classification", {"train": 24, "validation": 3, "test": 3}),
    ("reviews.tsv", {}, "classification", "text-classification", {"train": 24, "validation": 3, "test": 3}),
    ("reviews_semicolon.csv", {}, "classification", "text-classification", {"train": 24, "validation": 3, "test": 3}),
    (
        "stars.jsonl",
        {"label_column": "stars", "val_ratio": 0.2, "test_ratio": 0.0},
        "classification",
        "text-classification",
        {"train": 24, "validation": 6},
    ),
    ("nli.parquet", {}, "classification", "text-classification", {"train": 16, "validation": 2, "test": 2}),
    ("reviews_splits.zip", {}, "classification", "text-classification", {"train": 30, "validation": 6, "test": 6}),
    ("images_folders.zip", {}, "imagefolder", "image-classification", {"train": 24, "validation": 3, "test": 3}),
    (
        "images_csv.zip",
        {"val_ratio": 0.25, "test_ratio": 0},
        "imagefolder",
        "image-classification",
        {"train": 9, "validation": 3},
    ),
    ("images_splits.zip", {}, "imagefolder", "image-classification", {"train": 12, "validation": 6}),
]


@pytest.mark.parametrize(("file", "options", "fmt", "task", "splits"), CASES, ids=[c[0] for c in CASES])
def test_good_file_imports(services, file, options, fmt, task, splits):
    ds = import_file(services.database, services.workspace, GOOD / file, options=ImportOptions(**options))
    assert (ds.format, ds.task, ds.splits) == (fmt, task, splits)
    assert ds.num_rows == sum(splits.values())
    folder = services.workspace.dataset_dir(ds.id)
    assert sorted(p.name for p in folder.glob("*.parquet")) == sorted(f"{s}.parquet" for s in splits)
    assert (folder / "original" / file).exists()
    for split, n in splits.items():
        assert len(load_rows(services.workspace, ds.id, split)) == n
    if task != "sft":
        assert ds.stats["labels"] == sorted(
            {r["label"] for s in splits for r in load_rows(services.workspace, ds.id, s)}
        )


def test_tsv_cells_keep_their_quotes_as_written(services, tmp_path):
    """TSV has no quoting: a cell that starts with a quote (or holds one) is text, not the start of a field."""
    texts = ['"Great" product, would buy', 'It said "broken" on the box', '"', "5'11\" tall, fits"]
    lines = ["text\tlabel"] + [
        f"{text}\t{label}" for text, label in zip(texts, ["pos", "neg", "neg", "pos"], strict=True)
    ]
    path = tmp_path / "quotes.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = import_file(services.database, services.workspace, path, options=ImportOptions(val_ratio=0, test_ratio=0))
    rows = load_rows(services.workspace, ds.id)
    assert sorted(r["text"] for r in rows) == sorted(texts)
    assert {r["text"]: r["label"] for r in rows}['"'] == "neg"


def test_canonical_rows_of_each_sft_format(services):
    def rows(file):
        return load_rows(services.workspace, import_file(services.database, services.workspace, GOOD / file).id)

    alpaca = rows("alpaca.json")
    assert alpaca[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate to French\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"},
    ]
    assert [m["role"] for m in alpaca[2]["messages"]] == ["user", "assistant", "user", "assistant"]
    tool_call, pirate, kind = rows("sharegpt.json")
    assert [m["role"] for m in tool_call["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(tool_call["messages"][1]["content"])["name"] == "get_weather"
    assert json.loads(tool_call["tools"])[0]["name"] == "get_weather"
    assert pirate["messages"][0] == {"role": "system", "content": "You are a pirate."} and pirate["tools"] is None
    assert kind["messages"][0] == {"role": "system", "content": "Be kind."}
    openai = rows("messages.jsonl")
    assert openai[1]["messages"][0] == {"role": "user", "content": "Capital of Japan?"}
    assert "get_weather" in openai[2]["messages"][1]["content"] and openai[2]["messages"][2]["role"] == "tool"
    assert rows("pretrain.txt") == [
        {"text": "The cat sat on the mat."},
        {"text": "It was a sunny day."},
        {"text": "Tuneboard trains models."},
    ]


@pytest.mark.parametrize(
    ("prompt", "answer", "suffix"),
    [("question", "answer", ".jsonl"), ("prompt", "completion", ".jsonl"), ("input", "output", ".csv")],
)
def test_prompt_answer_tables_are_chat_data_not_classes(services, tmp_path, prompt, answer, suffix):
    """Q&A dumps name their columns in many ways; each answer is unique, so as 'labels' they would make
    a classifier with one row per class. They are read as instruction/output pairs instead."""
    from backend.data.inspect import inspect_upload

    pairs = [(f"What is {i} + {i}?", f"{2 * i}") for i in range(6)]
    path = tmp_path / f"qa{suffix}"
    if suffix == ".csv":
        path.write_text(f"{prompt},{answer}\n" + "".join(f'"{q}",{a}\n' for q, a in pairs), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({prompt: q, answer: a}) + "\n" for q, a in pairs), encoding="utf-8")
    shown = inspect_upload(path)
    assert shown["task"] == "sft" and f"{prompt} → instruction" in shown["note"]
    ds = import_file(services.database, services.workspace, path)
    assert ds.task == "sft"
    assert load_rows(services.workspace, ds.id)[1]["messages"] == [
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": "2"},
    ]


def test_prompt_answer_tables_keep_their_context_and_graded_ones_are_not_taken_for_chat(services, tmp_path):
    from backend.data.inspect import inspect_upload

    dolly = tmp_path / "dolly.jsonl"  # databricks-dolly's columns: the passage is in 'context'
    rows = [
        {"Instruction": f"Who wrote book {i}?", "context": f"Book {i} was written by Ann.", "Response": "Ann"}
        for i in range(3)
    ]
    dolly.write_text("".join(json.dumps({**r, "category": "closed_qa"}) + "\n" for r in rows), encoding="utf-8")
    assert "Instruction → instruction, Response → output, context → input" in inspect_upload(dolly)["note"]
    ds = import_file(services.database, services.workspace, dolly)
    assert load_rows(services.workspace, ds.id)[0]["messages"][0]["content"] == (
        "Who wrote book 0?\n\nBook 0 was written by Ann."
    )
    graded = tmp_path / "graded.csv"  # a safe/unsafe flag: not every answer is one to learn
    graded.write_text("prompt,response,label\n" + "".join(f"q{i},a{i},{i % 2}\n" for i in range(10)))
    assert inspect_upload(graded)["task"] != "sft"
    with pytest.raises(DataError, match="could not detect the format"):  # refused, not trained on as answers
        import_file(services.database, services.workspace, graded)


def test_classification_rows_labels_and_pairs(services):
    nli = import_file(services.database, services.workspace, GOOD / "nli.parquet")
    row = load_rows(services.workspace, nli.id)[0]
    assert set(row) == {"text", "text_pair", "label"} and row["text_pair"] == "Someone makes music."
    assert nli.stats["labels"] == ["entailment", "neutral"]  # Hugging Face ClassLabel names, not 0/1
    stars = import_file(
        services.database, services.workspace, GOOD / "stars.jsonl", options=ImportOptions(label_column="stars")
    )
    assert stars.stats["labels"] == ["1", "2", "3"] and stars.stats["columns_used"] == {
        "text": "content",
        "label": "stars",
    }


def test_images_keep_their_bytes_and_file_names(services):
    import io

    from PIL import Image

    ds = import_file(services.database, services.workspace, GOOD / "images_folders.zip")
    rows = [r for s in ds.splits for r in load_rows(services.workspace, ds.id, s)]
    assert ds.stats["labels"] == ["blue", "green", "red"] and ds.columns == ["label", "image", "file"]
    assert all(r["file"].split("/")[0] == r["label"] for r in rows)  # shapes/ wrapper folder dropped
    assert Image.open(io.BytesIO(rows[0]["image"])).format == "PNG"
    assert ds.stats["label_counts"]["train"] == {"blue": 8, "green": 8, "red": 8}  # stratified 80/10/10


def test_llamafactory_folder_imports_every_usable_entry(services, caplog):
    results = import_path(services.database, services.workspace, GOOD / "llamafactory")
    got = {r.dataset.name: (r.dataset.format, r.dataset.num_rows) for r in results}
    assert got == {
        "alpaca_en_demo": ("alpaca", 5),
        "glaive_toolcall_en_demo": ("sharegpt", 4),
        "openai_style_demo": ("sharegpt", 2),
        "custom_qa": ("alpaca", 5),
        "c4_demo": ("text", 6),
        "dpo_en_demo": ("preference", 3),  # ranking: true
    }
    skipped = " ".join(caplog.messages)
    for name in ("alpaca_en", "mllm_demo", "private_cluster_data", "not_downloaded_yet"):
        assert f"skipped {name}: " in skipped
    assert "file '/ML-A100/team/sft_data/train.json' is outside the folder" in skipped
    by_name = {r.dataset.name: r.dataset for r in results}
    qa = load_rows(services.workspace, by_name["custom_qa"].id)
    assert qa[0]["messages"] == [
        {"role": "system", "content": "tutor"},
        {"role": "user", "content": "Q0?"},
        {"role": "assistant", "content": "A0."},
    ]
    openai = load_rows(services.workspace, by_name["openai_style_demo"].id)
    assert openai[0]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert load_rows(services.workspace, by_name["c4_demo"].id)[0] == {"text": "Some web text number 0."}
    assert (services.workspace.dataset_dir(by_name["custom_qa"].id) / "original" / "dataset_info.json").is_file()


def test_hub_id_offline_gets_a_clear_message(services):
    from backend.data import DataError

    with pytest.raises(
        DataError, match=r"'tatsu-lab/alpaca' looks like a Hugging Face hub dataset, but this machine is offline"
    ):
        import_path(services.database, services.workspace, "tatsu-lab/alpaca")
    with pytest.raises(DataError, match="no such file or folder"):
        import_path(services.database, services.workspace, "missing.json")
