"""The Gradio API, driven by a real gradio_client against the running app: same actions as the CLI."""

import argparse
import contextlib
import io
import re
import time

import pytest
from gradio_client import Client, handle_file

from backend.cli.parser import build_parser as _parser
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.e2e

# CLI subcommands that are not API actions: the supervisor loop and the login file live on the server.
SERVER_ONLY = {"supervise", "auth add"}
RENAMED = {"datasets add": "add_dataset"}  # the Datasets tab's upload, named before the others
ALSO = {"datasets_import"}  # `datasets add` for a hub id or server path, with every import option
ALSO |= {"search_show", "search_stop", "search_list"}  # `search show|stop|list ID`: the action is an argument
ALSO |= {"evaluate_show", "evaluate_list", "evaluate_cancel"}  # `evaluate show|list|cancel ID`
ALSO |= {"chat_base"}  # `chat MODEL` (chat with a base model): on the API, apart from `chat RUN_ID`


def _cli_actions() -> set[str]:
    """'train', 'runs show', ... for every subcommand of `python -m backend.cli`."""
    actions = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            actions.add(prefix.strip())
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, f"{prefix} {name}")

    walk(_parser(), "")
    return actions


def test_every_cli_action_has_an_api_endpoint(app_url):
    client = Client(app_url, verbose=False)
    endpoints = {
        name.lstrip("/") for name in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    }
    expected = {RENAMED.get(a, a.replace(" ", "_")) for a in _cli_actions() - SERVER_ONLY} | ALSO
    assert len(expected) >= 14
    assert sorted(expected - endpoints) == [], "CLI actions without an API endpoint"
    assert sorted(endpoints - expected) == [], "public endpoints without a stable name or CLI action"


def test_api_mirrors_the_cli(app_url, tiny_model, tmp_path):
    client = Client(app_url, verbose=False)
    assert [d["name"] for d in client.predict(api_name="/datasets_list")] == ["identity-example"]

    client.predict(handle_file(str(EXAMPLES / "identity.json")), "api-identity", api_name="/add_dataset")
    shown = client.predict("api-identity", 2, api_name="/datasets_show")
    assert shown["num_rows"] == 120 and len(shown["preview"]) == 2
    table = tmp_path / "scores.csv"  # no column named like a label: a text column alone is not taken as plain text
    table.write_text("review,stars,shop\n" + "".join(f"text {i},{i % 2},s{i % 3}\n" for i in range(40)))
    status, *_ = client.predict(
        handle_file(str(table)), "", "", "auto", "auto", "review", None, api_name="/add_dataset"
    )
    assert status.startswith("⚠️ scores.csv: the format was not recognised") and "name the label column" in status
    status, *_ = client.predict(
        handle_file(str(table)), "", "", "auto", "auto", "review", "stars", api_name="/add_dataset"
    )
    assert status.startswith("Imported scores (40 rows")

    settings = {"dataset": "api-identity", "model": str(tiny_model), "max_steps": 3, "batch_size": 4}
    runs = [client.predict(settings, api_name="/train"), client.predict(settings, api_name="/train")]
    assert runs[0]["status"] in ("queued", "running")
    deadline = time.monotonic() + 180
    for run in runs:
        while (shown := client.predict(run["id"], api_name="/runs_show"))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, shown
            time.sleep(1)
        assert shown["status"] == "completed", shown["reason"]
    assert shown["step"] == 3 and shown["metrics"]["train_loss"] > 0
    run = runs[0]
    assert sorted(r["id"] for r in client.predict("completed", api_name="/runs_list")) == sorted(r["id"] for r in runs)

    reply = client.predict(run["id"], "你是谁？", 8, api_name="/chat")
    assert reply["run_id"] == run["id"] and isinstance(reply["reply"], str)
    predicted = client.predict(run["id"], "你是谁？", "", "", "", api_name="/predict")  # as `predict --prompt`
    assert predicted["task"] == "sft" and isinstance(predicted["reply"], str)
    with pytest.raises(Exception, match="dataset 'api-identity' has no 'dev' split"):
        client.predict(run["id"], "", "", "api-identity", "dev", api_name="/predict")
    exported = client.predict(run["id"], "adapter", api_name="/export")
    assert exported["verification"]["ok"] and exported["size_bytes"] > 0
    compared = client.predict([r["id"] for r in runs], api_name="/runs_compare")
    assert [r["id"] for r in compared["runs"]] == [r["id"] for r in runs]

    with pytest.raises(Exception, match="dataset 'nope' not found"):
        client.predict({"dataset": "nope"}, api_name="/train")
    with pytest.raises(Exception, match="only queued or running"):
        client.predict(run["id"], api_name="/runs_cancel")
    assert len(client.predict(api_name="/runs_list")) == 2  # the refused calls queued nothing

    client.predict(runs[1]["id"], api_name="/runs_delete")
    assert [r["id"] for r in client.predict(api_name="/runs_list")] == [run["id"]]
    client.predict("identity-example", api_name="/datasets_delete")
    assert [d["name"] for d in client.predict(api_name="/datasets_list")] == ["scores", "api-identity"]


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Gradio API") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_readme_example_runs_as_written(app_url, monkeypatch):
    """The README's gradio_client block, unchanged but for the port, with the bundled model (2 steps)."""
    code = _readme_example()
    assert code.count("http://127.0.0.1:7860/") == 1
    monkeypatch.chdir(ROOT)  # it names examples/identity.json relative to the repository
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace("http://127.0.0.1:7860/", app_url), "README.md", "exec"), {})  # noqa: S102
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("Loaded as API")]
    assert lines[:2] == ["120", "completed"] and lines[-1] == "True", lines
