"""The hostile and malformed files of tests/assets/bad, each with the message fragment its import must
fail with (written by make_assets.py, which calls bad())."""

from __future__ import annotations

import json

from make_assets import ALPACA, BAD, csv_text, jsonl, png, write, zip_of


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
