"""Evaluations on a tiny model: the multiple-choice score is lm-evaluation-harness's own, the CLI contract,
generation suites, refusals that write nothing."""

import json

import pytest
from sqlalchemy import update

from backend.evaluate.jobs import create_evaluation, get_evaluation, samples
from backend.evaluate.worker import evaluate
from db import Evaluation
from tests.conftest import cli, cli_json

YAML = """task: direct_mc
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {csv}
test_split: test
fewshot_split: test
output_type: multiple_choice
doc_to_text: {text}
doc_to_choice: {choice}
doc_to_target: "{{{{['A', 'B', 'C', 'D'].index(answer)}}}}"
metric_list:
  - metric: acc
"""
# the prompt and choices as one would write them in a task YAML for lm-evaluation-harness, per format
FORMATS = {
    "letters": (
        '"{{question.strip()}}\\nA. {{A}}\\nB. {{B}}\\nC. {{C}}\\nD. {{D}}\\nAnswer:"',
        '["A", "B", "C", "D"]',
    ),
    "cloze": ('"Question: {{question.strip()}}\\nAnswer:"', '"{{[A, B, C, D]}}"'),
}


def _mc_csv(path, n=16):
    lines = ["question,A,B,C,D,answer"]
    for i in range(n):
        lines.append(f"What is {i} plus {i}?,{2 * i} units,{2 * i + 1} units,{i} units,{3 * i} units,{'ABCD'[i % 4]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow  # lm-eval imports and loads the model twice: about a minute
@pytest.mark.parametrize("choices", ["letters", "cloze"])
def test_multiple_choice_score_equals_lm_evaluation_harness_run_directly(services, tiny_model, tmp_path, choices):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    csv = _mc_csv(tmp_path / "mmlu_style.csv")
    e = create_evaluation(
        services.database, services.workspace, [str(tiny_model)], [str(csv)], fewshot=2, choices=choices
    )
    with services.database.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id).values(status="running"))
    evaluate(services.database, services.workspace, e.id)  # the job's process body, here
    ours = get_evaluation(services.database, e.id)
    assert ours.status == "completed" and ours.results[0]["n"] == 16

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    text, choice = FORMATS[choices]
    (tasks / "direct_mc.yaml").write_text(YAML.format(csv=csv, text=text, choice=choice))
    direct = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_model), "dtype": "float32"},
        tasks=["direct_mc"],
        task_manager=TaskManager(include_path=str(tasks)),
        num_fewshot=2,
        batch_size=8,
        device="cpu",
        bootstrap_iters=0,
    )
    theirs = 100 * direct["results"]["direct_mc"]["acc,none"]
    assert abs(ours.results[0]["score"] - theirs) <= 0.1, (ours.results, theirs)
    per_doc = {s["doc_id"]: s["acc"] for s in direct["samples"]["direct_mc"]}
    assert [s["score"] for s in samples(services.database, e.id)] == [per_doc[i] for i in range(16)]


@pytest.mark.slow  # two evaluation processes start (torch, lm-eval): about 40 s
def test_cli_evaluates_generation_and_choice_suites_and_refuses_bad_files(workspace, tiny_model, tmp_path):
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps({"prompt": f"Say {w}", "reference": w}) + "\n" for w in ("a", "b", "c", "d")))
    out = cli_json(
        workspace, "evaluate", "--model", str(tiny_model), "--suite", str(gen), "--suite", "mc-zh",
        "--metric", "contains", "--limit", "3", "--fewshot", "1", "--wait", timeout=400,
    )  # fmt: skip
    assert out["status"] == "completed", out["reason"]
    scored = [(r["suite"], r["metric"], r["n"]) for r in out["results"]]
    assert scored == [("gen.jsonl", "contains", 3), ("mc-zh", "acc", 3)]
    for r in out["results"]:
        assert set(r) == {"model", "suite", "metric", "score", "n", "ci95"}
        assert r["ci95"][0] <= r["score"] <= r["ci95"][1]
    shown = cli_json(workspace, "evaluate", "show", str(out["id"]))
    assert len(shown["samples"]) == 6 and {s["suite"] for s in shown["samples"]} == {"gen.jsonl", "mc-zh"}
    assert all(s["answer"] in "ABCD" for s in shown["samples"] if s["suite"] == "mc-zh")

    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("question,A,B,C,D,answer\nq,a,b,c,d,A\nq2,a,b,c,d,E\n")
    no_prompt = tmp_path / "np.jsonl"
    no_prompt.write_text('{"prompt": "x", "reference": "y"}\n{"question": "x", "reference": "y"}\n')
    refusals = [
        (["--suite", str(bad_csv)], ["bad.csv", "row 2", "'answer'"]),
        (["--suite", str(no_prompt)], ["np.jsonl", "row 2", "'prompt'"]),
        (["--suite", str(gen), "--metric", "regex:("], ["'metric'", "regular expression"]),
        (["--suite", "nope.jsonl"], ["nope.jsonl", "shipped suite"]),
    ]
    for args, words in refusals:
        proc = cli(workspace, "evaluate", "--model", str(tiny_model), *args, "--json")
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        line = proc.stderr.strip()
        assert "\n" not in line and all(w in line for w in words), line
    proc = cli(workspace, "evaluate", "--model", "run:99", "--suite", "mc-en", "--json")
    assert proc.returncode == 2 and "99" in proc.stderr
    assert [e["id"] for e in cli_json(workspace, "evaluate", "list")] == [out["id"]]  # nothing written
