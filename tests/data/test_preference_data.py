"""Preference, KTO and GRPO-prompt data in the layouts people have import with the right task and rows;
a pair without chosen/rejected, an identical pair or a non-boolean KTO label is refused, nothing written."""

from __future__ import annotations

import json

import pytest

from backend.data import ImportOptions, import_file, import_path, list_datasets, load_rows
from backend.data.errors import DataError
from tests.conftest import cli, cli_json

Q = "What is 2 + 2?"
TRL_STRINGS = [{"prompt": Q, "chosen": "4.", "rejected": "Well, let me think about that for a long while... 4."}] * 3
TRL_MESSAGES = [
    {
        "prompt": [{"role": "user", "content": Q}],
        "chosen": [{"role": "assistant", "content": "4."}],
        "rejected": [{"role": "assistant", "content": "Probably 5."}],
    },
    {  # implicit prompt: both answers carry the conversation
        "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
        "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
    },
]
LLAMAFACTORY_RANKING = [
    {
        "conversations": [{"from": "human", "value": Q}],
        "chosen": {"from": "gpt", "value": "4."},
        "rejected": {"from": "gpt", "value": "22."},
    }
] * 2
ALPACA_PAIRS = [{"instruction": "Add", "input": "2 and 2", "chosen": "4", "rejected": "5"}] * 4
KTO = [
    {"messages": [{"role": "user", "content": Q}, {"role": "assistant", "content": "4."}], "label": True},
    {"prompt": Q, "completion": "5.", "label": False},
]
PROMPTS = [{"prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(5)]
PROMPTS += [{"messages": [{"role": "user", "content": "What is 1 + 0?"}]}]


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("rows", "fmt", "task", "n"),
    [
        (TRL_STRINGS, "auto", "preference", 3),
        (TRL_MESSAGES, "auto", "preference", 2),
        (LLAMAFACTORY_RANKING, "auto", "preference", 2),
        (ALPACA_PAIRS, "preference", "preference", 4),
        (KTO, "kto", "kto", 2),
        (PROMPTS, "prompts", "prompts", 6),
    ],
)
def test_each_layout_imports_as_its_task(services, tmp_path, rows, fmt, task, n):
    ds = import_file(services.database, services.workspace, _write(tmp_path, "d.jsonl", rows), fmt=fmt)
    assert (ds.task, ds.num_rows) == (task, n)
    first = load_rows(services.workspace, ds.id)[0]
    assert first["messages"][-1]["role"] == "user"
    if task == "preference":
        assert first["chosen"] != first["rejected"]
    if task == "kto":
        assert [r["desirable"] for r in load_rows(services.workspace, ds.id)] == [True, False]
        assert first["completion"] == "4."
    if task == "prompts":
        assert first["answer"] == "0" and first["messages"] == [{"role": "user", "content": "What is 0 + 0?"}]


def test_llamafactory_folder_ranking_and_kto_entries(services, tmp_path):
    folder = tmp_path / "lf"
    folder.mkdir()
    _write(folder, "pairs.jsonl", ALPACA_PAIRS)
    kto = [{"messages": KTO[0]["messages"], "tag": True}, {"messages": KTO[0]["messages"][:1] + [
        {"role": "assistant", "content": "5."}], "tag": False}]  # fmt: skip
    _write(folder, "kto.jsonl", kto)
    (folder / "dataset_info.json").write_text(
        json.dumps(
            {
                "pairs": {"file_name": "pairs.jsonl", "ranking": True},
                "kto": {
                    "file_name": "kto.jsonl",
                    "formatting": "sharegpt",
                    "columns": {"messages": "messages", "kto_tag": "tag"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user"}
                    | {"assistant_tag": "assistant"},
                },
            }
        )
    )
    got = {r.dataset.name: r.dataset for r in import_path(services.database, services.workspace, folder)}
    assert (got["pairs"].task, got["pairs"].num_rows) == ("preference", 4)
    assert (got["kto"].task, got["kto"].num_rows) == ("kto", 2)


@pytest.mark.parametrize(
    ("rows", "fmt", "message"),
    [
        ([{"prompt": Q, "chosen": "4"}], "auto", "d.jsonl row 1: field 'rejected' is missing"),
        ([{"prompt": Q, "rejected": "5"}], "auto", "d.jsonl row 1: field 'chosen' is missing"),
        ([TRL_STRINGS[0], {"prompt": Q, "chosen": "4", "rejected": " 4"}], "auto", "row 2: 'chosen' and 'rejected'"),
        ([{"prompt": Q, "completion": "4", "label": "yes"}], "kto", "field 'label' must be true or false"),
        ([{"prompt": Q, "completion": "4", "label": 1}], "kto", "field 'label' must be true or false"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(services, tmp_path, rows, fmt, message):
    with pytest.raises(DataError, match=message):
        import_path(
            services.database, services.workspace, _write(tmp_path, "d.jsonl", rows), options=ImportOptions(format=fmt)
        )
    assert list_datasets(services.database) == []
    assert not [p for p in (services.workspace.root / "datasets").iterdir() if not p.name.startswith(".")]


def test_cli_add_and_show_give_task_and_rows(workspace, tmp_path):
    added = cli_json(workspace, "datasets", "add", str(_write(tmp_path, "pairs.jsonl", TRL_STRINGS)))
    shown = cli_json(workspace, "datasets", "show", "pairs")
    assert (shown["task"], shown["num_rows"]) == ("preference", 3), added
    kto = _write(tmp_path, "kto.jsonl", [{"prompt": Q, "completion": "4", "label": "maybe"}])
    bad = cli(workspace, "datasets", "add", str(kto), "--format", "kto")
    assert bad.returncode == 2 and "kto.jsonl row 1: field 'label' must be true or false" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
