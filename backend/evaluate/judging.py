"""An evaluation's judge step (backend/evaluate/judge.py does the asking): after every model has answered,
the judge model grades the generation suites' answers and, first, the human-labelled samples.

Results come back as more (model, suite) results whose model starts with JUDGE ("judge: run:3 vs base:X"
for pairwise, "judge: run:3" against a rubric) and per-sample rows whose answer is the judge's reason;
the human check is "judge: human labels" on the labels file, and its agreement rides on every verdict.

    check_judge(database, workspace, {"model": "base:SmolLM2-135M-Instruct", "mode": "pairwise", ...}, models)
    for label, suite, metric, rows, extra in judge_all(database, workspace, samples, models, judge, done, progress):
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backend.evaluate.endpoint import PREFIX, EndpointJudge, settings
from backend.evaluate.judge import DEFAULT_RUBRIC, Judge, agreement, check_human, check_mode, sample_score
from backend.workspace import Workspace
from db import Database

JUDGE = "judge: "
HUMAN = f"{JUDGE}human labels"


def check_judge(database: Database, workspace: Workspace, judge: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """The judge's settings checked (its model loadable, the mode, the human file) or a ValueError."""
    from backend.evaluate.engine import check_ref, is_classifier

    mode = check_mode(judge.get("mode") or "pairwise")
    ref = str(judge.get("model") or "").strip()
    if not ref:
        raise ValueError("setting 'judge': name the judge model (base:NAME, run:ID or a folder)")
    if ref.startswith(PREFIX):  # an OpenAI-compatible endpoint (backend/evaluate/endpoint.py)
        settings(ref)
    else:
        check_ref(database, workspace, ref)
    if is_classifier(database, ref):
        raise ValueError(f"setting 'judge': '{ref}' is a classifier; a judge is a chat model")
    if mode == "pairwise" and len(models) < 2:
        raise ValueError("setting 'judge_mode': pairwise judging compares two models; add a second --model")
    human = judge.get("human") or None
    if human:
        check_human(human, mode)
        human = str(Path(human).expanduser().resolve())
    return {"model": ref, "mode": mode, "rubric": judge.get("rubric") or DEFAULT_RUBRIC, "human": human}


def judged_pairs(models: list[str], mode: str) -> list[tuple[str, str | None]]:
    """(model, baseline): pairwise each later model against the first; a rubric grades every model."""
    if mode == "pairwise":
        return [(m, models[0]) for m in models[1:]]
    return [(m, None) for m in models]


def label(model: str, baseline: str | None) -> str:
    return f"{JUDGE}{model} vs {baseline}" if baseline else f"{JUDGE}{model}"


def work(models: list[str], suites: list[dict[str, Any]], judge: dict[str, Any], limit: int | None) -> int:
    """How many verdicts the judge gives (for the evaluation's progress)."""
    generation = sum(min(s["n"], limit or s["n"]) for s in suites if s["kind"] == "generation")
    human = len(check_human(judge["human"], judge["mode"])) if judge.get("human") else 0
    return generation * len(judged_pairs(models, judge["mode"])) + human


def judge_all(
    database: Database,
    workspace: Workspace,
    scored: list[dict[str, Any]],
    models: list[str],
    judge: dict[str, Any],
    finished: set[tuple[str, str]],
    progress: Callable[[int], None],
) -> Iterator[tuple[str, str, str, list[dict[str, Any]], dict[str, Any]]]:
    """(label, suite, metric, per-sample rows, extra result fields) for each judged pair not yet finished."""
    from backend.evaluate.engine import load_model

    mode = judge["mode"]
    answers: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for s in scored:  # the evaluation's samples so far (backend.evaluate.jobs.samples)
        if not s["model"].startswith(JUDGE) and not (s["detail"] or {}).get("loglikelihoods"):  # generation only
            answers.setdefault((s["model"], s["suite"]), {})[s["index"]] = s
    suites = list(dict.fromkeys(suite for _, suite in answers))
    if judge["model"].startswith(PREFIX):
        grader: Judge = EndpointJudge(judge["model"], mode, judge.get("rubric") or DEFAULT_RUBRIC)
    else:
        model, tokenizer = load_model(database, workspace, judge["model"])
        grader = Judge(model, tokenizer, mode, judge.get("rubric") or DEFAULT_RUBRIC)
    rubric = grader.rubric_text if mode != "pairwise" else None
    about: dict[str, Any] = {"judge": {"model": judge["model"], "mode": mode, "rubric": rubric}}
    if judge.get("human"):
        rows, agreed = _human_check(grader, judge["human"], progress)
        about["agreement"] = agreed
        if (HUMAN, Path(judge["human"]).name) not in finished:
            yield HUMAN, Path(judge["human"]).name, "agreement", rows, about
    for suite in suites:
        for candidate, baseline in judged_pairs(models, mode):
            name = label(candidate, baseline)
            if (name, suite) in finished or (candidate, suite) not in answers:
                continue
            mine, theirs = answers[(candidate, suite)], answers.get((baseline, suite), {}) if baseline else {}
            rows = []
            for index, s in sorted(mine.items()):
                if baseline and index not in theirs:
                    continue
                if baseline:
                    got = grader.pairwise(s["prompt"], theirs[index]["answer"], s["answer"], s["reference"])
                else:
                    got = grader.rubric(s["prompt"], s["answer"], s["reference"])
                rows.append(_row(s, mode, got))
                progress(1)
            yield name, suite, f"judge_{mode}", rows, {**about, **_tally(mode, rows)}


def _row(s: dict[str, Any], mode: str, got: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": s["index"],
        "prompt": s["prompt"],
        "reference": s["reference"],
        "answer": got["reason"],
        "score": sample_score(mode, got["verdict"]),
        "detail": {"judge": True, **got},
    }


def _tally(mode: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = [r["detail"]["verdict"] for r in rows]
    if mode == "pairwise":  # B is the judged model, A its baseline
        return {"wins": verdicts.count("B"), "losses": verdicts.count("A"), "ties": verdicts.count("tie")}
    if mode == "pass":
        return {"passed": verdicts.count("PASS")}
    return {"mean_score": round(sum(verdicts) / len(verdicts), 2) if verdicts else None}


def _human_check(grader: Judge, path: str, progress: Callable[[int], None]) -> tuple[list[dict], dict[str, Any]]:
    """The judge on every human-labelled sample; each row scores 1 when it gave the human's verdict."""
    rows, judged, human = [], [], []
    for i, h in enumerate(check_human(path, grader.mode)):
        if grader.mode == "pairwise":
            got = grader.pairwise(h["prompt"], h["answer_a"], h["answer_b"], h["reference"])
            shown = f"A: {h['answer_a']}\nB: {h['answer_b']}"
        else:
            got = grader.rubric(h["prompt"], h["answer"], h["reference"])
            shown = h["answer"]
        judged.append(got["verdict"])
        human.append(h["human"])
        rows.append(
            {
                "index": i,
                "prompt": f"{h['prompt']}\n{shown}",
                "reference": f"human: {h['human']}",
                "answer": f"judge: {got['verdict']} · {got['reason']}",
                "score": float(got["verdict"] == h["human"]),
                "detail": {"judge": True, **got, "human": h["human"]},
            }
        )
        progress(1)
    return rows, {**agreement(judged, human), "file": Path(path).name}
