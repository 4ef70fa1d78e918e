"""The Evaluate tab's tables and chart from an evaluation's results: the judge's tally and its agreement with
human labels beside its verdicts, one bar per (suite, model) without the judge's rows, verdict columns named."""

from webui.tabs.evaluate import chart_frame, results_frame, samples_frame

SHOWN = {
    "results": [
        {"model": "base:m", "suite": "identity", "metric": "contains", "score": 5.0, "n": 20, "ci95": [0, 15]},
        {"model": "run:3", "suite": "identity", "metric": "contains", "score": 95.0, "n": 20, "ci95": [85, 100]},
        {
            "model": "judge: run:3 vs base:m",
            "suite": "identity",
            "metric": "judge_pairwise",
            "score": 80.0,
            "n": 20,
            "ci95": [65, 92],
            "judge": {"model": "base:m", "mode": "pairwise"},
            "wins": 15,
            "losses": 2,
            "ties": 3,
            "agreement": {"percent": 75.0, "n": 8, "agreed": 6, "kappa": 0.6, "file": "h.jsonl"},
        },
    ],  # fmt: skip
    "differences": [
        {"model": "run:3", "suite": "identity", "difference": 90.0, "ci95": [75, 100], "regression": False}
    ],
}


def test_results_show_the_judge_tally_and_its_agreement_with_humans():
    table = results_frame(SHOWN)
    last = table.iloc[:, -1].tolist()
    assert last[1].startswith("+90.0 (+75.0 – +100.0)")
    assert last[2] == "wins 15 · losses 2 · ties 3 · agrees with humans on 75.0% of 8, κ 0.60"


def test_the_chart_has_a_bar_per_suite_and_model_and_leaves_the_judge_out():
    chart = chart_frame(SHOWN)
    assert chart["bar"].tolist() == ["identity · base:m", "identity · run:3"]
    assert chart["score"].tolist() == [5.0, 95.0] and chart["score"].dtype == float  # a number axis
    assert chart_frame({}).empty


def test_per_sample_columns_name_each_models_answer_and_the_judges_verdict_and_reason():
    judge = "judge: run:3 vs base:m"
    rows = [{"suite": "identity", "index": 0, "prompt": "Who are you?", "reference": "Tuna", "run:3 answer": "Tuna",
             "run:3 score": 1.0, f"{judge} verdict": "B", f"{judge} reason": "names Tuna"}]  # fmt: skip
    columns = samples_frame(rows).columns.tolist()
    assert columns[-2:] == ["judge: run:3 vs base:m: verdict", "judge: run:3 vs base:m: reason"]


def test_long_prompts_and_model_names_are_cut_in_the_table_not_in_the_csv():
    folder = "/home/someone/models/exported/gguf-q8_0-of-run-12"
    rows = [{"suite": "s", "index": 0, "prompt": "Why? " * 100, "reference": "r", f"{folder} answer": "a" * 500,
             f"{folder} score": 0.5}]  # fmt: skip
    frame = samples_frame(rows)
    assert frame.columns.tolist()[-2:] == [
        "…xported/gguf-q8_0-of-run-12: answer",
        "…xported/gguf-q8_0-of-run-12: score",
    ]
    assert len(frame.iloc[0, 2]) == 240 and frame.iloc[0, 2].endswith("…") and len(frame.iloc[0, 4]) == 240
    assert frame.iloc[0, 5] == 0.5 and rows[0]["prompt"] == "Why? " * 100  # numbers and the rows themselves untouched
