"""A classifier run scored on a labelled split: accuracy, macro P/R/F1 and a confusion matrix per sample."""

import pytest
from sqlalchemy import update

from backend.evaluate.jobs import create_evaluation, get_evaluation, samples
from backend.evaluate.worker import evaluate
from backend.services import Services
from db import Evaluation
from tests.conftest import cli_json

WORDS = {"good": ["great film", "superb acting", "loved it"], "bad": ["awful plot", "boring film", "hated it"]}


@pytest.mark.slow  # a classifier run trains in its own process first: about 30 s
def test_a_classifier_run_is_scored_on_a_dataset_split(workspace, tiny_bert, tiny_model, tmp_path):
    data = tmp_path / "reviews.csv"
    lines = [f"{text} {i},{label}" for i in range(8) for label, texts in WORDS.items() for text in texts]
    data.write_text("text,label\n" + "\n".join(lines) + "\n")
    cli_json(workspace, "datasets", "add", str(data), "--task", "text-classification", "--name", "reviews")
    run = cli_json(
        workspace, "train", "--task", "text-classification", "--dataset", "reviews", "--model", str(tiny_bert),
        "--max-steps", "2", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")

    services = Services.open(workspace)
    db, ws = services.database, services.workspace
    for models, suites in (([f"run:{run['id']}"], ["mc-en"]), ([str(tiny_model)], ["dataset:reviews"])):
        with pytest.raises(ValueError, match="needs a"):  # a classifier on prompts, a chat model on labels
            create_evaluation(db, ws, models, suites)
    e = create_evaluation(db, ws, [f"run:{run['id']}"], ["dataset:reviews:validation"])
    with db.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id).values(status="running"))
    evaluate(db, ws, e.id)
    (result,) = get_evaluation(db, e.id).results
    rows = samples(db, e.id)
    assert result["suite"] == "dataset:reviews:validation" and result["n"] == len(rows) > 0
    assert result["score"] == pytest.approx(100 * result["metrics"]["accuracy"], abs=0.01)
    assert {"f1_macro", "precision_macro", "recall_macro"} <= set(result["metrics"])
    assert sum(map(sum, result["metrics"]["confusion_matrix"]["matrix"])) == len(rows)
    assert {r["answer"] for r in rows} <= {"good", "bad"}
    assert all(r["score"] == float(r["answer"] == r["reference"]) for r in rows)
