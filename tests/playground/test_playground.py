"""Playground: streamed chat settings, side by side with the base model, the model cache, classification and
batch prediction, and `predict` on the command line, on real tiny runs trained by the real worker."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from backend.config import GenerationConfig
from backend.playground.cache import ModelCache, model_bytes
from tests.conftest import EXAMPLES, cli, cli_json

TASK = "text-classification"
GREEDY16 = GenerationConfig(max_new_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, tiny_bert):
    """One workspace with a completed chat run (all weights, a step large enough that the tiny model's greedy
    answer changes; LoRA on it stays too close to the base in a few steps) and a completed text classifier on
    the shipped support tickets."""
    ws = tmp_path_factory.mktemp("playground") / "ws"
    cli_json(ws, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    chat = cli_json(
        ws, "train", "--dataset", "identity", "--model", str(tiny_model), "--max-steps", "10",
        "--method", "full", "--lr", "0.01", "--wait",
    )  # fmt: skip
    assert chat["status"] == "completed", chat.get("reason")
    cli_json(ws, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", TASK, "--name", "tickets")
    clf = cli_json(
        ws, "train", "--task", TASK, "--dataset", "tickets", "--model", str(tiny_bert),
        "--epochs", "2", "--batch-size", "64", "--wait",
    )  # fmt: skip
    assert clf["status"] == "completed", clf.get("reason")
    return ws, chat, clf


@pytest.fixture
def services(trained):
    from backend.services import Services

    return Services.open(trained[0])


def test_side_by_side_streams_the_base_and_the_fine_tune_and_they_differ(services, trained, tiny_model):
    from backend.playground.chat import base_of, load, reply, stream_side_by_side

    _, chat, _ = trained
    assert base_of(services.database, chat["id"]) == str(tiny_model)
    question = [{"role": "user", "content": "Who are you?"}]
    db, ws = services.database, services.workspace
    steps = list(stream_side_by_side(db, ws, [str(tiny_model), chat["id"]], [question, question], GREEDY16))
    assert len(steps) > 2 and all(len(s) == 2 for s in steps)
    first_done = next(i for i, s in enumerate(steps) if s[1])  # one model at a time: the base column first
    assert all(s[1] == "" for s in steps[:first_done]) and all(s[0] == steps[-1][0] for s in steps[first_done:])
    base_answer, run_answer = steps[-1]
    # each column is its own model's answer, streamed: the same text the model gives alone
    assert base_answer == reply(*load(db, ws, str(tiny_model)), "Who are you?", GREEDY16)
    assert run_answer == reply(*load(db, ws, chat["id"]), "Who are you?", GREEDY16)
    assert base_answer != run_answer  # the fine-tune changed what the model says
    growing = [s[1] for s in steps if s[1]]
    assert all(b.startswith(a) for a, b in zip(growing, growing[1:], strict=False))  # streamed, token by token


def test_chat_settings_stop_seed_and_system_prompt(services, trained):
    from backend.playground.chat import load, stream_chat

    model, tokenizer = load(services.database, services.workspace, trained[1]["id"])
    turns = [{"role": "user", "content": "你是谁？"}]
    full = list(stream_chat(model, tokenizer, turns, GREEDY16))[-1]
    assert len(full) > 6
    stop = full[3:6]
    cut = list(stream_chat(model, tokenizer, turns, GenerationConfig(max_new_tokens=16, temperature=0.0, stop=(stop,))))
    assert cut[-1] == full[: full.find(stop)] and stop not in cut[-1]  # the answer ends before the stop text
    sampled = GenerationConfig(max_new_tokens=12, temperature=1.5, top_k=40, repetition_penalty=1.3, seed=7)
    first, again = ([*stream_chat(model, tokenizer, turns, sampled)][-1] for _ in range(2))
    assert first == again  # the same seed samples the same answer
    with_system = list(stream_chat(model, tokenizer, turns, GREEDY16, system="You are Tuna."))[-1]
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are Tuna."}, *turns], add_generation_prompt=True, tokenize=False
    )
    prompt = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**prompt, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(out[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert with_system == expected  # the answer to the conversation with the system message first
    with pytest.raises(ValueError, match="repetition_penalty"):
        GenerationConfig(repetition_penalty=3)


def test_the_cache_unloads_the_least_recently_used_model_past_its_bound():
    a, b, c = (torch.nn.Linear(256, 256) for _ in range(3))  # 257 KB each in fp32
    size = model_bytes(a)
    assert size == (256 * 256 + 256) * 4
    cache = ModelCache(limit_bytes=int(size * 2.5))
    loads: list[str] = []

    def loader(name, model):
        return lambda: loads.append(name) or (model, None)

    assert cache.get("a", "A", loader("a", a))[0] is a
    cache.get("b", "B", loader("b", b))
    cache.get("a", "A", loader("a", a))  # used again: now b is the least recently used
    cache.get("c", "C", loader("c", c))  # over the bound: b goes
    assert loads == ["a", "b", "c"] and cache.keys() == ["a", "c"]
    usage = cache.usage()
    assert usage["used_bytes"] == 2 * size and usage["limit_bytes"] == int(size * 2.5)
    assert [m["label"] for m in usage["models"]] == ["A", "C"] and usage["process_rss_bytes"] > 0
    assert cache.unload() == ["A", "C"] and cache.usage()["used_bytes"] == 0
    alone = ModelCache(limit_bytes=1)  # a model larger than the bound still loads (alone)
    alone.get("a", "A", loader("a", a))
    alone.get("b", "B", loader("b", b))
    assert alone.keys() == ["b"]


def test_a_bad_cache_bound_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("TUNEBOARD_MODEL_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="TUNEBOARD_MODEL_CACHE_MB"):
        ModelCache().get("a", "A", lambda: pytest.fail("loaded despite a bad bound"))


def test_text_classification_gives_probabilities_of_the_run_labels(services, trained):
    from backend.playground.predict import classify

    _, _, clf = trained
    out = classify(services.database, services.workspace, clf["id"], text="I was charged twice for my order")
    probs = out["probabilities"]
    assert set(probs) == {"account", "billing", "delivery", "technical"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert list(probs.values()) == sorted(probs.values(), reverse=True) and out["label"] == next(iter(probs))
    with pytest.raises(ValueError, match="classifies text; give a text"):
        classify(services.database, services.workspace, clf["id"], image=b"\x89PNG")


def test_batch_predict_writes_one_row_per_example_and_scores_like_the_engine(services, trained):
    from backend.data import find_dataset
    from backend.playground.predict import batch_predict

    ws, _, clf = trained
    out = batch_predict(services.database, services.workspace, clf["id"], "tickets", "validation")
    n = find_dataset(services.database, "tickets").splits["validation"]
    with open(out["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert out["rows"] == len(rows) == n and out["csv"].startswith(str(ws / "predictions"))
    assert set(rows[0]) == {"row", "text", "label", "predicted", "probability", "correct"}
    # the run was scored on this very split by the Trainer: the same engine metrics, the same numbers (the run
    # keeps them to 4 decimals)
    for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro"):
        assert out["metrics"][key] == pytest.approx(clf["metrics"][f"eval_{key}"], abs=5e-5), key
    assert out["metrics"]["confusion_matrix"] == clf["metrics"]["confusion_matrix"]
    assert sum(r["correct"] == "True" for r in rows) / n == pytest.approx(out["metrics"]["accuracy"])


def test_predict_cli_answers_in_json_and_refuses_bad_input_with_exit_2(trained, tmp_path, capsys):
    from backend.cli import main

    ws, chat, clf = trained

    def run(*args: str) -> tuple[int, str, str]:  # the CLI's entry point in this process (a subprocess costs ~4 s)
        code = main(["--workspace", str(ws), "predict", *args, "--json"])
        out = capsys.readouterr()
        return code, out.out, out.err

    reply = cli_json(ws, "predict", str(chat["id"]), "--prompt", "你是谁？")  # once exactly as a user runs it
    assert reply["task"] == "sft" and isinstance(reply["reply"], str)
    code, out, _ = run(str(clf["id"]), "--prompt", "my parcel never arrived")
    assert code == 0 and sum(json.loads(out)["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    target = tmp_path / "preds.csv"
    code, out, _ = run(str(clf["id"]), "--dataset", "tickets", "--split", "test", "--out", str(target))
    batch = json.loads(out)
    assert code == 0 and batch["csv"] == str(target)
    assert len(target.read_text(encoding="utf-8").splitlines()) == batch["rows"] + 1
    assert main(["--workspace", str(ws), "train", "--dataset", "identity", "--max-steps", "1", "--json"]) == 0
    queued = json.loads(capsys.readouterr().out)
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    before = sorted(p.name for p in (ws / "predictions").iterdir())
    refusals = [
        ([str(queued["id"]), "--prompt", "hi"], f"run {queued['id']} is queued"),
        ([str(clf["id"]), "--image", str(tmp_path / "digit.png")], "classifies text; give a text (--prompt TEXT)"),
        ([str(chat["id"]), "--image", str(tmp_path / "digit.png")], "chat (sft) run; give --prompt TEXT"),
        ([str(clf["id"]), "--dataset", "tickets", "--split", "dev"], "has no 'dev' split; it has train, validation"),
        ([str(clf["id"]), "--dataset", "identity", "--split", "train"], "is a sft dataset but run"),
        ([str(clf["id"]), "--dataset", "tickets"], "--dataset needs --split"),
        ([str(clf["id"]), "--prompt", "x", "--dataset", "tickets", "--split", "test"], "give one of --prompt"),
        ([str(clf["id"]), "--prompt", "x", "--out", str(tmp_path / "x.csv")], "--out names the CSV"),
    ]
    for args, message in refusals:
        code, out, err = run(*args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and out == "", (args, err)
    proc = cli(ws, "predict", "999", "--prompt", "hi", "--json")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: run 999 not found; `runs list` shows the runs"
    assert proc.stdout == ""
    assert sorted(p.name for p in (ws / "predictions").iterdir()) == before  # nothing written
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_image_classifier_gives_top_k_classes_and_batch_scores_like_the_engine(tmp_path):
    """A real (1-epoch, random-init offline) MobileNetV3 on 100 digits: top-5 of an uploaded image, and the
    validation split scored as the run scored itself (~1 min)."""
    import subprocess
    import sys
    import zipfile

    from backend.playground.predict import batch_predict, classify
    from backend.services import Services
    from tests.conftest import ROOT

    ws, zipped = tmp_path / "ws", tmp_path / "digits.zip"
    script = [sys.executable, str(EXAMPLES / "digits_to_imagefolder.py"), "--out", str(zipped), "--limit", "100"]
    subprocess.run(script, cwd=ROOT, check=True, capture_output=True)
    task = "image-classification"
    cli_json(ws, "datasets", "add", str(zipped), "--task", task, "--name", "digits")
    run = cli_json(
        ws, "train", "--task", task, "--dataset", "digits", "--model", "mobilenet_v3_small",
        "--epochs", "1", "--batch-size", "40", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    with zipfile.ZipFile(zipped) as z:
        png = z.read(next(n for n in z.namelist() if n.endswith(".png")))
    services = Services.open(ws)
    out = classify(services.database, services.workspace, run["id"], image=png, top_k=5)
    assert len(out["probabilities"]) == 5 and set(out["probabilities"]) <= {str(d) for d in range(10)}
    assert list(out["probabilities"].values()) == sorted(out["probabilities"].values(), reverse=True)
    batch = batch_predict(services.database, services.workspace, run["id"], "digits", "validation")
    assert batch["metrics"]["accuracy"] == pytest.approx(run["metrics"]["eval_accuracy"], abs=5e-5)
    with open(batch["csv"], newline="") as f:
        assert len(list(csv.DictReader(f))) == batch["rows"]
    with pytest.raises(ValueError, match="classifies images; give an image"):
        classify(services.database, services.workspace, run["id"], text="a seven")


def test_a_stream_closed_mid_answer_stops_generating(tiny_model):
    """A page closed mid-answer (the generator closed) frees the cores at once instead of generating on."""
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.config import GenerationConfig
    from backend.playground.chat import stream_chat

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    gen, turns = GenerationConfig(max_new_tokens=1500, temperature=0.0), [{"role": "user", "content": "hi"}]
    start = time.monotonic()
    answer = list(stream_chat(model, tokenizer, turns, gen))[-1]
    whole = time.monotonic() - start
    assert len(tokenizer(answer)["input_ids"]) > 500  # the random model talks on: a long answer to cut short
    stream = stream_chat(model, tokenizer, turns, gen)
    start = time.monotonic()
    next(stream)
    stream.close()  # returns once the generation thread has ended
    assert time.monotonic() - start < whole / 5, (whole, time.monotonic() - start)
