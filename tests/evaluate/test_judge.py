"""The judge: both orders asked and a tie when they disagree, verdicts and reasons stored per sample, its
agreement with human labels reported; and (slow) the bundled model judging pairs whose answer is obvious."""

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from backend.evaluate.compare import side_by_side
from backend.evaluate.jobs import create_evaluation, get_evaluation, list_evaluations, samples
from backend.evaluate.judge import Judge, _pairwise_text, _said
from backend.evaluate.worker import evaluate
from db import Evaluation
from tests.conftest import EXAMPLES

HUMAN = EXAMPLES / "evals" / "judge_pairwise_human.jsonl"


def _tiny_judge(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return Judge(AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model))


def test_pairwise_asks_both_orders_and_calls_a_tie_when_they_disagree(tiny_model):
    judge = _tiny_judge(tiny_model)
    same = judge.pairwise("Who are you?", "I am Tuna.", "I am Tuna.")
    assert same["verdict"] == "tie" and same["orders"] in (["A", "B"], ["B", "A"])  # the letter it favours, twice
    for a, b in [("4", "five"), ("Paris is the capital.", "Bananas."), ("yes", "no")]:
        got = judge.pairwise("A question?", a, b)
        second = judge._ask(_pairwise_text("A question?", b, a, ""), _said(b, a), reason=False)["verdict"]
        assert got["orders"][1] == {"A": "B", "B": "A"}[second]  # the second order, with the answers swapped
        agree = got["orders"][0] == got["orders"][1]
        assert got["verdict"] == (got["orders"][0] if agree else "tie")


def test_an_evaluation_with_a_judge_stores_verdicts_reasons_and_agreement(services, tiny_model, tmp_path):
    from sklearn.metrics import cohen_kappa_score

    twin = tmp_path / "twin"
    shutil.copytree(tiny_model, twin)  # the same weights: the same answers, so every verdict must be a tie
    suite = tmp_path / "q.jsonl"
    suite.write_text("".join(json.dumps({"prompt": p, "reference": "x"}) + "\n" for p in ("Hi?", "2+2?", "你好")))
    judge = {"model": str(tiny_model), "mode": "pairwise", "human": str(HUMAN)}
    e = create_evaluation(
        services.database, services.workspace, [str(tiny_model), str(twin)], [str(suite)], judge=judge
    )
    assert e.total == 2 * 3 + 3 + 8  # answers, verdicts, human-labelled samples
    with services.database.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id).values(status="running"))
    evaluate(services.database, services.workspace, e.id)
    done = get_evaluation(services.database, e.id)
    assert done.status == "completed" and done.done == done.total
    verdicts = next(r for r in done.results if r["metric"] == "judge_pairwise")
    assert verdicts["model"] == f"judge: {twin} vs {tiny_model}" and verdicts["n"] == 3
    assert (verdicts["wins"], verdicts["losses"], verdicts["ties"], verdicts["score"]) == (0, 0, 3, 50.0)
    human = next(r for r in done.results if r["metric"] == "agreement")
    rows = [x for x in samples(services.database, e.id) if x["model"] == "judge: human labels"]
    assert len(rows) == 8 and all(x["detail"]["reason"] is not None for x in rows)
    said, truth = [x["detail"]["verdict"] for x in rows], [x["detail"]["human"] for x in rows]
    agreed = verdicts["agreement"]
    assert agreed == human["agreement"] and agreed["n"] == 8 and agreed["file"] == HUMAN.name
    assert agreed["percent"] == pytest.approx(100 * sum(a == b for a, b in zip(said, truth, strict=True)) / 8, abs=0.05)
    if len(set(said) | set(truth)) > 1 and agreed["kappa"] is not None:
        assert agreed["kappa"] == pytest.approx(cohen_kappa_score(truth, said), abs=1e-3)
    table = side_by_side(samples(services.database, e.id))
    judged = [r for r in table if r["suite"] == "q.jsonl"]
    assert all(r[f"judge: {twin} vs {tiny_model} verdict"] == "tie" for r in judged)
    assert all(r[f"judge: {twin} vs {tiny_model} reason"].startswith("the two orders disagree") for r in judged)


def test_judge_settings_are_refused_by_name_and_nothing_is_written(services, tiny_model, tmp_path):
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"prompt": "q", "answer_a": "a", "answer_b": "b", "human": "A"}\n'
                   '{"prompt": "q", "answer_a": "a", "answer_b": "b", "human": "maybe"}\n')  # fmt: skip
    model = str(tiny_model)
    cases = [
        ([model], {"model": model, "mode": "pairwise"}, "add a second --model"),
        ([model], {"model": model, "mode": "rubric", "human": str(bad)}, "labels.jsonl, row 1: field 'answer'"),
        ([model, "base:x"], {"model": model, "mode": "pairwise"}, "x"),
        ([model], {"model": model, "mode": "best"}, "'judge_mode'"),
    ]
    for models, judge, words in cases:
        with pytest.raises(ValueError, match=words):
            create_evaluation(services.database, services.workspace, models, ["arithmetic"], judge=judge)
    twin = tmp_path / "twin"
    shutil.copytree(tiny_model, twin)
    with pytest.raises(ValueError, match="labels.jsonl, row 2: field 'human' is 'maybe'"):
        create_evaluation(services.database, services.workspace, [model, str(twin)], ["arithmetic"],
                          judge={"model": model, "human": str(bad)})  # fmt: skip
    with pytest.raises(ValueError, match="add a generation suite"):
        create_evaluation(services.database, services.workspace, [model, str(twin)], ["mc-en"], judge={"model": model})
    assert list_evaluations(services.database) == []


@pytest.mark.slow  # the bundled model judges one pair placed both ways (4 questions): about a minute on 2 cores
def test_the_bundled_model_prefers_the_obviously_right_answer_in_both_orders():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.models.catalog import resolve_model
    from backend.workspace import Workspace

    folder = resolve_model("SmolLM2-135M-Instruct", Workspace.resolve(None).models_dir)
    judge = Judge(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))
    prompt, right, wrong = "What is 2 + 2?", "2 + 2 = 4.", "The moon is made of cheese."
    first, second = judge.pairwise(prompt, right, wrong, "4"), judge.pairwise(prompt, wrong, right, "4")
    assert (first["verdict"], second["verdict"]) == ("A", "B"), (first, second)  # the right answer, in either place
    assert first["reason"]  # and a reason, stored beside the verdict


@pytest.fixture
def chat_server(tiny_model, tmp_path):
    """A real OpenAI-compatible server on 127.0.0.1 answering with the tiny model (tests/evaluate/chat_server.py)."""
    import subprocess
    import sys
    import time

    ready, log = tmp_path / "port", tmp_path / "requests.jsonl"
    script = Path(__file__).with_name("chat_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tiny_model), str(ready), str(log)], start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not ready.exists() or not ready.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, "the chat server did not start"
        time.sleep(0.2)
    yield f"http://127.0.0.1:{ready.read_text()}/v1", log
    proc.terminate()  # the server this fixture started, by its pid
    proc.wait(timeout=30)


def test_an_openai_compatible_endpoint_judges_with_both_orders_and_the_key(services, tiny_model, tmp_path, chat_server,
                                                                            monkeypatch):  # fmt: skip
    url, log = chat_server
    monkeypatch.setenv("TUNEBOARD_JUDGE_URL", url)
    monkeypatch.setenv("TUNEBOARD_JUDGE_KEY_ENV", "MY_JUDGE_KEY")
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    twin = tmp_path / "twin"
    shutil.copytree(tiny_model, twin)
    models, judge = [str(tiny_model), str(twin)], {"model": "openai:tiny", "mode": "pairwise"}
    with pytest.raises(ValueError, match="names MY_JUDGE_KEY, which is not set"):
        create_evaluation(services.database, services.workspace, models, ["arithmetic"], limit=2, judge=judge)
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-123")
    e = create_evaluation(services.database, services.workspace, models, ["arithmetic"], limit=2, judge=judge)
    with services.database.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id).values(status="running"))
    evaluate(services.database, services.workspace, e.id)
    done = get_evaluation(services.database, e.id)
    assert done.status == "completed", done.reason
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(requests) == 2 * 2 and all(r["auth"] == "Bearer sk-test-123" for r in requests)  # 2 samples x 2 orders
    assert all(r["body"]["model"] == "tiny" and r["body"]["temperature"] == 0 for r in requests)
    first, second = (r["body"]["messages"][-1]["content"] for r in requests[:2])
    a1, b1 = first.split("Answer A: ")[1].split("\n\nAnswer B: ")
    a2, b2 = second.split("Answer A: ")[1].split("\n\nAnswer B: ")
    assert (a1, b1.split("\n\n")[0]) == (b2.split("\n\n")[0], a2)  # the same pair, swapped
    verdicts = next(r for r in done.results if r["metric"] == "judge_pairwise")
    # a random tiny model writes no "Verdict: A|B": no order has a verdict, so every sample is a tie
    assert (verdicts["ties"], verdicts["n"]) == (2, 2)
