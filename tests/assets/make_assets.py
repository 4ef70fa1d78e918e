"""Writes the dataset corpus under tests/assets (committed; rerun after changing it).

    .venv/bin/python tests/assets/make_assets.py

good/: small valid files in every format; bad/: hostile and malformed files, each listed in
bad/expected.json with the message fragment its import must fail with (and, for some, the
environment or options the import runs with).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOOD, BAD = HERE / "good", HERE / "bad"
ALPACA = {"instruction": "Say hi", "input": "", "output": "Hi!"}
REVIEWS = [
    ("The plot was gripping and the acting superb.", "positive"),
    ("I walked out after twenty minutes.", "negative"),
    ("It was fine, nothing special.", "neutral"),
    ("A masterpiece of quiet storytelling.", "positive"),
    ("Dull, predictable and far too long.", "negative"),
    ("Some good scenes, some boring ones.", "neutral"),
]


def png(color: tuple[int, int, int], size: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def jsonl(rows: list) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def zip_of(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():  # a fixed date keeps the committed zips byte-identical on rerun
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)


def csv_text(header: list[str], rows: list, delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def reviews(n: int) -> list[tuple[str, str]]:
    return [(f"{t} (#{i})", label) for i in range(n) for t, label in [REVIEWS[i % len(REVIEWS)]]]


def good() -> None:
    alpaca = [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
        {"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour", "system": "Be brief."},
        {
            "instruction": "And in German?",
            "input": "",
            "output": "Guten Morgen",
            "history": [["Translate: hi", "Salut"]],
        },
        {"instruction": "把这句话翻译成英文", "input": "你好，世界", "output": "Hello, world"},
        {"instruction": "What is 2+2?", "input": "", "output": "4"},
    ]
    write(GOOD / "alpaca.json", json.dumps(alpaca, ensure_ascii=False, indent=2))
    write(GOOD / "alpaca_bom.jsonl", "\ufeff" + jsonl(alpaca))
    write(GOOD / "alpaca_utf16.jsonl", jsonl(alpaca).encode("utf-16"))
    tools = json.dumps([{"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object"}}])
    sharegpt = [
        {
            "conversations": [
                {"from": "human", "value": "What's the weather in Paris?"},
                {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
                {"from": "observation", "value": '{"temp": 21}'},
                {"from": "gpt", "value": "It is 21 degrees in Paris."},
            ],
            "tools": tools,
        },
        {
            "conversations": [
                {"from": "system", "value": "You are a pirate."},
                {"from": "human", "value": "Hello"},
                {"from": "gpt", "value": "Arr, hello!"},
                {"from": "human", "value": "Bye"},
                {"from": "gpt", "value": "Fair winds!"},
            ]
        },
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}], "system": "Be kind."},
    ]
    write(GOOD / "sharegpt.json", json.dumps(sharegpt, indent=2))
    messages = [
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hey."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Capital of Japan?"}]},
                {"role": "assistant", "content": "Tokyo."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Weather in Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
                    ],
                },
                {"role": "tool", "content": '{"temp": 25}'},
                {"role": "assistant", "content": "25 degrees."},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
    ]
    write(GOOD / "messages.jsonl", jsonl(messages))
    write(GOOD / "pretrain.txt", "The cat sat on the mat.\n\nIt was a sunny day.\nTuneboard trains models.\n")
    write(GOOD / "pretrain.jsonl", jsonl([{"text": f"Document number {i} about fine-tuning."} for i in range(7)]))
    rows = reviews(30)
    write(GOOD / "reviews.csv", csv_text(["text", "label"], rows))
    write(GOOD / "reviews.tsv", csv_text(["sentence", "sentiment"], rows, "\t"))
    write(GOOD / "reviews_semicolon.csv", csv_text(["review", "category"], rows, ";"))
    write(GOOD / "stars.jsonl", jsonl([{"content": t, "stars": i % 3 + 1} for i, (t, _) in enumerate(rows)]))
    nli = [
        {"premise": f"A man plays guitar ({i}).", "hypothesis": "Someone makes music.", "label": i % 2}
        for i in range(20)
    ]
    _hf_parquet(GOOD / "nli.parquet", nli)
    splits = {"train.csv": reviews(30), "validation.csv": reviews(6), "test.csv": reviews(6)}
    zip_of(
        GOOD / "reviews_splits.zip",
        {f"reviews/{k}": csv_text(["text", "label"], v).encode() for k, v in splits.items()},
    )
    colors = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    folders = {f"shapes/{c}/{c}_{i}.png": png(rgb, 8 + i) for c, rgb in colors.items() for i in range(10)}
    folders["shapes/README.md"] = b"Three colours, ten images each."
    zip_of(GOOD / "images_folders.zip", folders | {"__MACOSX/._x": b"junk", "shapes/.DS_Store": b"junk"})
    flat = {f"img_{i}.png": png(list(colors.values())[i % 3]) for i in range(12)}
    labels = csv_text(["filename", "label"], [(f"img_{i}.png", list(colors)[i % 3]) for i in range(12)])
    zip_of(GOOD / "images_csv.zip", flat | {"labels.csv": labels.encode()})
    split_imgs = {
        f"{s}/{c}/{i}.png": png(rgb)
        for s, n in (("train", 4), ("val", 2))
        for c, rgb in colors.items()
        for i in range(n)
    }
    zip_of(GOOD / "images_splits.zip", split_imgs)
    _llamafactory(GOOD / "llamafactory", alpaca, sharegpt)


def _hf_parquet(path: Path, rows: list[dict]) -> None:
    import datasets

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral"]),
        }
    )
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def _llamafactory(root: Path, alpaca: list, sharegpt: list) -> None:
    """Mirrors LLaMA-Factory's data/: default alpaca, sharegpt with columns/tags, pretrain text, skipped kinds."""
    shutil.rmtree(root, ignore_errors=True)
    info = {
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "glaive_toolcall_en_demo": {
            "file_name": "glaive_toolcall_en_demo.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "tools": "tools"},
        },
        "openai_style_demo": {
            "file_name": "openai_style_demo.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "system": "system_prompt"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        },
        "custom_qa": {"file_name": "qa", "columns": {"prompt": "question", "response": "answer", "system": "persona"}},
        "c4_demo": {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}},
        "alpaca_en": {
            "hf_hub_url": "llamafactory/alpaca_en",
            "ms_hub_url": "llamafactory/alpaca_en",
            "om_hub_url": "HaM/alpaca_en",
        },
        "dpo_en_demo": {
            "file_name": "dpo_en_demo.json",
            "ranking": True,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
        "private_cluster_data": {"file_name": "/ML-A100/team/sft_data/train.json", "formatting": "sharegpt"},
        "not_downloaded_yet": {"file_name": "missing.json"},
        "mllm_demo": {
            "file_name": "mllm_demo.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        },
    }
    write(root / "dataset_info.json", json.dumps(info, indent=2))
    write(root / "alpaca_en_demo.json", json.dumps(alpaca, ensure_ascii=False, indent=2))
    write(root / "glaive_toolcall_en_demo.json", json.dumps(sharegpt[:1] * 2 + sharegpt[1:], indent=2))
    openai = [
        {
            "system_prompt": "Answer in one word.",
            "messages": [{"role": "user", "content": "Sky colour?"}, {"role": "assistant", "content": "Blue."}],
        },
        {"messages": [{"role": "user", "content": "Grass colour?"}, {"role": "assistant", "content": "Green."}]},
    ]
    write(root / "openai_style_demo.json", json.dumps(openai, indent=2))
    write(
        root / "qa" / "part1.jsonl",
        jsonl([{"question": f"Q{i}?", "answer": f"A{i}.", "persona": "tutor"} for i in range(3)]),
    )
    write(root / "qa" / "part2.jsonl", jsonl([{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(3, 5)]))
    write(root / "c4_demo.jsonl", jsonl([{"text": f"Some web text number {i}."} for i in range(6)]))
    write(root / "dpo_en_demo.json", "[]")
    write(root / "mllm_demo.json", "[]")


def bad() -> list[dict]:
    """(file, fragment[, options, env]) for every hostile or malformed file."""
    cases: list[dict] = []

    def add(name: str, content: str | bytes, error: str, **extra) -> None:
        write(BAD / name, content)
        cases.append({"file": name, "error": error, **extra})

    def add_zip(name: str, entries: dict[str, bytes], error: str, symlinks=None, **extra) -> None:
        zip_of(BAD / name, entries, symlinks)
        cases.append({"file": name, "error": error, **extra})

    add("empty.json", "", "empty.json: the file is empty")
    add("blank.jsonl", "\n\n  \n", "blank.jsonl: the file is empty")
    add("empty_array.json", "[]", "the JSON array is empty")
    add(
        "broken_array.json",
        '[\n{"instruction": "a", "output": "b"},\n{"instruction": "c" "output": "d"}\n]',
        "broken_array.json line 3: invalid JSON",
    )
    add(
        "broken_lines.jsonl",
        '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
        "broken_lines.jsonl line 2: invalid JSON",
    )
    add(
        "missing_output.json",
        json.dumps([ALPACA, {"instruction": "x"}]),
        "missing_output.json row 2: field 'output' is missing",
    )
    add(
        "empty_output.jsonl",
        jsonl([ALPACA, ALPACA, {"instruction": "x", "output": "  "}]),
        "empty_output.jsonl row 3: field 'output' is empty",
    )
    add(
        "number_output.json",
        json.dumps([ALPACA, {"instruction": "x", "output": 5}]),
        "row 2: field 'output' must be text",
    )
    add("row_not_object.json", json.dumps([ALPACA, ["x", "y"]]), "row_not_object.json row 2: expected an object")
    add("bad_history.json", json.dumps([{**ALPACA, "history": "oops"}]), "row 1: field 'history' must be a list")
    add(
        "latin1.json",
        '[{"instruction": "caf\u00e9", "output": "x"}]'.encode("latin-1"),
        "latin1.json line 1: byte 21 is not valid UTF-8",
    )
    add("gbk.csv", "text,label\n你好,a\n再见,b\n".encode("gbk"), "gbk.csv line 2: byte 11 is not valid UTF-8")
    add(
        "unknown_fields.json",
        json.dumps([{"foo": 1, "bar": 2}]),
        "could not detect the format from the fields 'foo', 'bar'",
    )
    add(
        "single_object.json", '{\n  "instruction": "a",\n  "output": "b"\n}\n', "one JSON object; a dataset is an array"
    )
    add("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply")
    add("not_json.json", "instruction,output\na,b\n", "line 1: this is not JSON")
    add(
        "huge_row.jsonl",
        jsonl([ALPACA, {"instruction": "x", "output": "y" * 300}]),
        "huge_row.jsonl line 2: the row has",
        env={"TUNEBOARD_MAX_ROW_CHARS": "200"},
    )
    add("too_big.jsonl", jsonl([ALPACA]), "over the 0 MB upload limit", env={"TUNEBOARD_MAX_UPLOAD_MB": "0"})
    add("spreadsheet.xlsx", b"PK\x03\x04 not really", "'.xlsx' is not a dataset file type")
    add(
        "sharegpt_unknown_role.json",
        json.dumps([{"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "yo"}]}]),
        "row 1 turn 2: role 'bot' is unknown",
    )
    add(
        "sharegpt_empty_turn.jsonl",
        jsonl([{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": ""}]}]),
        "row 1 turn 2: the gpt turn is empty",
    )
    add(
        "sharegpt_no_answer.json",
        json.dumps([{"conversations": [{"from": "human", "value": "hi"}]}]),
        "row 1: the conversation has no assistant turn",
    )
    add(
        "sharegpt_bad_turn.json",
        json.dumps([{"conversations": [{"speaker": "human", "text": "hi"}]}]),
        "row 1 turn 1: a turn needs 'from' and 'value'",
    )
    add(
        "messages_bad_role.jsonl",
        jsonl([{"messages": [{"role": "robot", "content": "x"}]}]),
        "row 1 message 1: role 'robot' is unknown",
    )
    add("messages_not_list.json", json.dumps([{"messages": "hello"}]), "field 'messages' must be a non-empty list")
    add(
        "messages_image_part.jsonl",
        jsonl([{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}]),
        "content part of type 'image_url' is not supported",
    )
    add("text_blank_lines.txt", "\n   \n\n", "the file is empty")
    add(
        "cls_single_class.csv",
        csv_text(["text", "label"], [(f"t{i}", "spam") for i in range(6)]),
        "a classifier needs at least two classes",
    )
    add(
        "cls_empty_label.csv",
        csv_text(["text", "label"], [("a", "x"), ("b", "y"), ("c", "")]),
        "cls_empty_label.csv row 3: field 'label' is empty",
    )
    add(
        "cls_ragged.csv", "text,label\na,x\nb,y,extra\n", "cls_ragged.csv row 2 (line 3): 3 fields but the header has 2"
    )
    add("cls_bad_quote.csv", 'text,label\n"unclosed,x\n', "not valid CSV")
    add("cls_dup_header.csv", "text,text,label\na,b,c\n", "column 'text' appears twice in the header")
    add("cls_header_only.csv", "text,label\n", "has a header but no rows")
    add(
        "cls_mixed_labels.jsonl",
        jsonl([{"text": "a", "label": 1}, {"text": "b", "label": "pos"}]),
        "row 2: field 'label' is text but earlier rows have integer labels",
    )
    add("cls_float_label.jsonl", jsonl([{"text": "a", "label": 0.5}]), "labels must be class names or whole numbers")
    add(
        "cls_number_text.jsonl",
        jsonl([{"text": "a", "label": "x"}, {"text": 7, "label": "y"}]),
        "row 2: field 'text' must be text",
    )
    add(
        "cls_wrong_column.csv",
        csv_text(["review", "stars"], [("a", "1"), ("b", "2")]),
        "label column 'rating' is not in the file",
        options={"label_column": "rating"},
    )
    add(
        "cls_one_of_a_class.csv",
        csv_text(["text", "label"], [*[(f"a{i}", "x") for i in range(8)], ("b", "y")]),
        "class 'y' has only one row",
    )
    add_zip("zip_absolute.zip", {"/etc/passwd.json": b"[]"}, "entry '/etc/passwd.json' has an absolute path")
    add_zip("zip_dotdot.zip", {"data/../../evil.json": b"[]"}, "points outside the zip with '..'")
    add_zip(
        "zip_symlink.zip",
        {"a.json": json.dumps([ALPACA]).encode()},
        "is a symbolic link",
        symlinks={"link.json": "/etc/passwd"},
    )
    add_zip("zip_bomb.zip", {"bomb.jsonl": b"\0" * (30 * 1024**2)}, "looks like a zip bomb")
    add_zip(
        "zip_too_big.zip",
        {f"part{i}.jsonl": b" " * 200_000 for i in range(8)},
        "add up to more than 1 MB",
        env={"TUNEBOARD_MAX_UNZIPPED_MB": "1"},
    )
    add_zip(
        "lf_outside.zip",
        {"dataset_info.json": json.dumps({"x": {"file_name": "../../etc/passwd"}}).encode(), "a.json": b"[]"},
        "x: file '../../etc/passwd' is outside the folder",
    )
    add("not_a_zip.zip", b"this is not a zip", "not_a_zip.zip: not a readable zip file")
    add_zip("zip_only_junk.zip", {"__MACOSX/._a": b"x", ".DS_Store": b"x"}, "the zip holds no files")
    add_zip(
        "images_bad_files.zip",
        {
            "cat/1.png": png((1, 2, 3)),
            "cat/2.png": png((3, 2, 1)),
            "cat/notes.txt": b"hello",
            "dog/1.png": png((9, 9, 9)),
            "dog/broken.jpg": b"\xff\xd8 not a jpeg",
        },
        "2 file(s) cannot be used: cat/notes.txt (not an image); dog/broken.jpg (unreadable",
    )
    add_zip(
        "images_single_class.zip",
        {f"cat/{i}.png": png((i, i, i)) for i in range(4)},
        "a classifier needs at least two classes",
    )
    add_zip(
        "images_csv_missing.zip",
        {
            "a.png": png((1, 1, 1)),
            "labels.csv": csv_text(["file", "label"], [("a.png", "x"), ("missing.png", "y")]).encode(),
        },
        "labels.csv row 2: image 'missing.png' is not in the zip",
    )
    add_zip(
        "images_loose.zip",
        {
            "cat/1.png": png((1, 1, 1)),
            "cat/2.png": png((2, 2, 2)),
            "dog/1.png": png((3, 3, 3)),
            "stray.png": png((4, 4, 4)),
        },
        "stray.png (not inside a class folder)",
    )
    add_zip(
        "lf_missing_file.zip",
        {"data/dataset_info.json": json.dumps({"mine": {"file_name": "nope.json"}}).encode(), "data/other.json": b"[]"},
        "no entry can be imported (mine: file 'nope.json' is not in the folder",
    )
    add_zip(
        "lf_bad_row.zip",
        {
            "dataset_info.json": json.dumps(
                {"a": {"file_name": "a.json"}, "b": {"file_name": "b.json", "formatting": "sharegpt"}}
            ).encode(),
            "a.json": json.dumps([ALPACA]).encode(),
            "b.json": json.dumps(
                [{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": 3}]}]
            ).encode(),
        },
        "b: b.json row 1 turn 2: 'value' must be text",
    )
    return cases


if __name__ == "__main__":
    for folder in (GOOD, BAD):
        shutil.rmtree(folder, ignore_errors=True)
    good()
    cases = bad()
    (BAD / "expected.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} bad files, {sum(1 for _ in GOOD.rglob('*') if _.is_file())} good files")
