"""Writes the dataset corpus under tests/assets (committed; rerun after changing it).

    .venv/bin/python tests/assets/make_assets.py

good/: small valid files in every format; bad/ (bad_assets.py): hostile and malformed files, each listed in
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
    ranking = [
        {
            "conversations": [{"from": "human", "value": f"Name a colour ({i})."}],
            "chosen": {"from": "gpt", "value": "Blue."},
            "rejected": {"from": "gpt", "value": "Colours are a deep subject; let me explain at length first."},
        }
        for i in range(3)
    ]
    write(root / "dpo_en_demo.json", json.dumps(ranking, indent=2))
    write(root / "mllm_demo.json", "[]")


if __name__ == "__main__":
    for folder in (GOOD, BAD):
        shutil.rmtree(folder, ignore_errors=True)
    from bad_assets import bad  # after the helpers above exist: it imports them from here

    good()
    cases = bad()
    (BAD / "expected.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} bad files, {sum(1 for _ in GOOD.rglob('*') if _.is_file())} good files")
