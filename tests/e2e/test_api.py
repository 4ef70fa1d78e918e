"""The Gradio API, driven by a real gradio_client against the running app: same actions as the CLI."""

import time

import pytest
from gradio_client import Client, handle_file

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.e2e


def test_api_mirrors_the_cli(app_url, tiny_model):
    client = Client(app_url, verbose=False)
    assert [d["name"] for d in client.predict(api_name="/datasets_list")] == ["identity-example"]

    client.predict(handle_file(str(EXAMPLES / "identity.json")), "api-identity", api_name="/add_dataset")
    shown = client.predict("api-identity", 2, api_name="/datasets_show")
    assert shown["num_rows"] == 120 and len(shown["preview"]) == 2

    settings = {"dataset": "api-identity", "model": str(tiny_model), "max_steps": 3, "batch_size": 4}
    run = client.predict(settings, api_name="/train")
    assert run["status"] in ("queued", "running")
    deadline = time.monotonic() + 120
    while (shown := client.predict(run["id"], api_name="/runs_show"))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, shown
        time.sleep(1)
    assert shown["status"] == "completed", shown["reason"]
    assert shown["step"] == 3 and shown["metrics"]["train_loss"] > 0
    assert [r["id"] for r in client.predict("completed", api_name="/runs_list")] == [run["id"]]

    reply = client.predict(run["id"], "Who are you?", 8, api_name="/chat")
    assert reply["run_id"] == run["id"] and isinstance(reply["reply"], str)
    exported = client.predict(run["id"], "adapter", api_name="/export")
    assert exported["verification"]["ok"] and exported["size_bytes"] > 0

    with pytest.raises(Exception, match="dataset 'nope' not found"):
        client.predict({"dataset": "nope"}, api_name="/train")
    with pytest.raises(Exception, match="only queued or running"):
        client.predict(run["id"], api_name="/runs_cancel")
    assert len(client.predict(api_name="/runs_list")) == 1  # the refused calls queued nothing
