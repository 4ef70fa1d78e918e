"""Score one model on one suite: multiple choice through lm-evaluation-harness, generation through greedy answers.

Models load as the playground loads them (backend/playground/chat.py: a run's adapter merged into its
base). Multiple choice is lm-evaluation-harness's own log-likelihood scoring (HFLM given the loaded
model, a task config built from the suite file, few-shot examples drawn from the same file, the sample
itself excluded), in one of two formats: `letters`, MMLU's (the options listed, the letter A-D scored
after "Answer:"), or `cloze` (each option's own text scored after the question, as lm-evaluation-harness's
cloze variants do: small models that pick one letter whatever the question still show what they know).
Generation asks each prompt as a chat turn, greedy, in left-padded batches, and scores the answer with
backend/evaluate/scoring.py.

    loaded = load_model(database, workspace, "run:3")   # (model, tokenizer), or a Classifier
    samples = run_suite(loaded, suite, fewshot=0, progress=print)
    # [{"index", "prompt", "reference", "answer", "score", "detail"}]
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.evaluate.scoring import score
from backend.evaluate.suites import LETTERS, Suite
from backend.workspace import Workspace
from db import Database

BATCH = 8
MAX_NEW_TOKENS = 128
# MMLU's prompt in lm-evaluation-harness (mmlu/default/_default_template_yaml), on our fields.
DOC_TO_TEXT = "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\nAnswer:"
CLOZE_TO_TEXT = "Question: {{question.strip()}}\nAnswer:"  # each option's text is the continuation
CHOICE_FORMATS = ("letters", "cloze")


def parse_ref(ref: str) -> int | str:
    """'run:3' -> 3 (a run id); 'base:NAME' -> 'NAME'; anything else: a model folder."""
    if ref.startswith("run:"):
        value = ref.removeprefix("run:")
        if not value.isdigit():
            raise ValueError(f"model '{ref}': run:ID takes a run's number, e.g. run:3")
        return int(value)
    return ref.removeprefix("base:")


def is_classifier(database: Database, ref: str) -> bool:
    """Whether `ref` is a text-classification run (scored on dataset: suites, not on prompts)."""
    source = parse_ref(ref)
    if not isinstance(source, int):
        return False
    from backend.playground.predict import CLASSIFIERS, run_task

    return run_task(database, source) in CLASSIFIERS


def check_ref(database: Database, workspace: Workspace, ref: str) -> None:
    """Refuse a model that cannot be evaluated (a run not completed, not a chat run; an unknown base)."""
    source = parse_ref(ref)
    if isinstance(source, int):
        from backend.playground.chat import require_chat_run
        from backend.runs.results import model_folder

        if not is_classifier(database, ref):
            require_chat_run(database, source)
        model_folder(database, workspace, source)
        return
    if not ref.startswith("base:") and not Path(source).is_dir():
        raise ValueError(f"model '{ref}': write base:NAME, run:ID or an existing model folder")
    from backend.models.catalog import resolve_model

    resolve_model(source, workspace.models_dir)


def load_model(database: Database, workspace: Workspace, ref: str) -> Any:
    """(model, tokenizer) for a language model; a playground Classifier for a classification run."""
    if is_classifier(database, ref):
        from backend.playground.predict import load_classifier

        return load_classifier(database, workspace, parse_ref(ref))
    from backend.playground.chat import load

    return load(database, workspace, parse_ref(ref))


def run_suite(
    loaded: Any,
    suite: Suite,
    fewshot: int = 0,
    progress: Callable[[int], None] | None = None,
    choices: str = "letters",
) -> list[dict[str, Any]]:
    """Every sample of `suite` scored for this model (`progress(n)` after each n samples done); `choices`:
    the multiple-choice format (CHOICE_FORMATS)."""
    if suite.kind == "classification":
        from backend.evaluate.classify import classification_samples

        return classification_samples(loaded, suite, progress)
    model, tokenizer = loaded
    if suite.kind == "choice":
        samples = choice_samples(model, tokenizer, suite, fewshot, choices)
        if progress:
            progress(len(samples))
        return samples
    return generation_samples(model, tokenizer, suite, progress)


def choice_task(data_file: Path, name: str = "tuneboard_choice", choices: str = "letters") -> dict[str, Any]:
    """lm-evaluation-harness's task config for a multiple-choice file (JSON Lines of question,A-D,answer)."""
    cloze = choices == "cloze"
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "fewshot_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": CLOZE_TO_TEXT if cloze else DOC_TO_TEXT,
        "doc_to_choice": "{{[A, B, C, D]}}" if cloze else list(LETTERS),
        "doc_to_target": "{{['A', 'B', 'C', 'D'].index(answer)}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def choice_samples(
    model: Any, tokenizer: Any, suite: Suite, fewshot: int, choices: str = "letters"
) -> list[dict[str, Any]]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    if fewshot >= len(suite.rows):
        raise ValueError(f"setting 'fewshot': {fewshot} examples need a suite of more rows than {len(suite.rows)}")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=BATCH, device=str(model.device))
    with tempfile.TemporaryDirectory(prefix="tuneboard-eval-") as tmp:
        data = Path(tmp) / "suite.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in suite.rows), encoding="utf-8")
        task = choice_task(data, choices=choices)
        out = simple_evaluate(model=lm, tasks=[task], num_fewshot=fewshot, log_samples=True, bootstrap_iters=0)
    samples = []
    for s in sorted(out["samples"][task["task"]], key=lambda s: s["doc_id"]):
        logliks = [float(r[0]) for r in s["filtered_resps"]]
        doc = s["doc"]
        samples.append(
            {
                "index": s["doc_id"],
                "prompt": f"{doc['question'].strip()}\n" + "\n".join(f"{c}. {doc[c]}" for c in LETTERS),
                "reference": doc["answer"],
                "answer": LETTERS[max(range(len(logliks)), key=logliks.__getitem__)],
                "score": float(s["acc"]),
                "detail": {"loglikelihoods": [round(x, 4) for x in logliks]},
            }
        )
    return samples


def generation_samples(
    model: Any, tokenizer: Any, suite: Suite, progress: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    from backend.tasks.causal_lm import generate_answers

    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this model has no chat template; generation suites ask each prompt as a chat turn")
    samples: list[dict[str, Any]] = []
    for start in range(0, len(suite.rows), BATCH):
        chunk = suite.rows[start : start + BATCH]
        rows = [
            {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["reference"]}]}
            for r in chunk
        ]
        _, answers, _ = generate_answers(model, tokenizer, rows, MAX_NEW_TOKENS, BATCH)
        for i, (row, answer) in enumerate(zip(chunk, answers, strict=True), start):
            value = score(suite.metric, answer, row["reference"])
            samples.append(
                {"index": i, "prompt": row["prompt"], "reference": row["reference"], "answer": answer, "score": value}
            )
        if progress:
            progress(len(chunk))
    return [{**s, "detail": {}} for s in samples]
