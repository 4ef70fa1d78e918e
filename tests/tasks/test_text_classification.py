"""Text classification: build() on a tiny random BERT, and training through the real worker."""

import pytest
import torch

from backend.config import RunConfig
from backend.tasks import text_classification
from tests.conftest import EXAMPLES, cli, cli_json

TASK = "text-classification"


def rows(n: int = 10) -> list[dict]:
    good = [{"text": f"loved it a great movie {'superb ' * (i % 3)}", "label": "positive"} for i in range(n)]
    bad = [{"text": f"hated it the plot was boring {'awful ' * (i % 4)}", "label": "negative"} for i in range(n)]
    return good + bad


def build(folder, train, evals=(), **settings):
    cfg = RunConfig.from_dict({"task": "text-classification", "dataset": "d", "model": str(folder), **settings})
    return text_classification.build(cfg, folder, list(train), list(evals), torch.float32)


def test_build_names_classes_pads_per_batch_and_truncates(tiny_bert):
    long = {"text": " ".join(["boring"] * 100), "label": "negative"}
    built = build(tiny_bert, rows(), [long, {"text": "superb acting", "label": "positive"}], cutoff_len=16)
    model = built.model
    assert model.config.id2label == {0: "negative", 1: "positive"}  # sorted labels are the class ids
    assert model.config.label2id == {"negative": 0, "positive": 1}
    assert len(built.train) == 20 and len(built.eval) == 2  # the dataset's own validation split is used
    assert len(built.eval[0]["input_ids"]) == 16  # cut at cutoff_len
    batch = built.collator([built.train[0], built.eval[1]])
    assert batch["input_ids"].shape[1] == 8  # padded to the longer row, rounded up to a multiple of 8
    assert batch["labels"].tolist() == [built.train[0]["labels"], 1]
    out = model(**batch)
    assert out.logits.shape == (2, 2) and out.loss > 0
    assert built.trainable_params == built.total_params  # full fine-tuning by default


def test_layer_groups_are_embeddings_then_each_layer_and_the_head_stays_out(tiny_bert):
    built = build(tiny_bert, rows())
    bert = built.model.bert
    assert built.layer_groups == [bert.embeddings, bert.encoder.layer[0], bert.encoder.layer[1]]
    grouped = {id(p) for g in built.layer_groups for p in g.parameters()}
    rest = {n.split(".")[0] + "." + n.split(".")[1] for n, p in built.model.named_parameters() if id(p) not in grouped}
    assert rest == {"bert.pooler", "classifier.weight", "classifier.bias"}
    model, groups = text_classification.skeleton(RunConfig(task="text-classification"), tiny_bert)
    assert len(groups) == 3 and next(model.parameters()).device.type == "meta"


def test_text_pairs_are_encoded_as_two_segments(tiny_bert):
    pairs = [{"text": "great movie", "text_pair": "loved it", "label": str(i % 2)} for i in range(4)]
    built = build(tiny_bert, pairs)
    assert 1 in built.train[0]["token_type_ids"] and built.train[0]["input_ids"].count(3) == 2  # [SEP] twice


def test_without_a_validation_split_a_stratified_share_is_held_out(tiny_bert):
    built = build(tiny_bert, rows(10), val_ratio=0.2)
    assert (len(built.train), len(built.eval)) == (16, 4)
    assert sorted(built.eval["labels"]) == [0, 0, 1, 1]  # both classes scored


def test_trainer_metrics_score_the_logits(tiny_bert):
    from transformers import EvalPrediction

    built = build(tiny_bert, rows())
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]).numpy()
    m = built.compute_metrics(EvalPrediction(predictions=logits, label_ids=torch.tensor([0, 1, 1]).numpy()))
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == {"labels": ["negative", "positive"], "matrix": [[1, 0], [1, 1]]}


def test_lora_keeps_the_new_head_trainable(tiny_bert):
    built = build(tiny_bert, rows(), method="lora", lora_rank=2, lora_alpha=4)
    trainable = {n for n, p in built.model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert built.trainable_params < built.total_params / 2


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ([{"text": "great", "label": "positive"}] * 12, "single class \\('positive'\\).*at least two"),
        ([{"messages": [{"role": "user", "content": "hi"}]}] * 3, "train row 1 has no 'text'.*another task"),
        ([{"text": "great", "label": ""}, {"text": "awful", "label": "b"}], "train row 1 has no 'label'"),
    ],
)
def test_bad_data_is_refused_with_the_row(tiny_bert, train, message):
    with pytest.raises(ValueError, match=message):
        build(tiny_bert, train)


def test_a_torchvision_model_is_refused_for_text(tmp_path):
    from backend.models.catalog import resolve_model

    folder = resolve_model("resnet18", tmp_path)
    with pytest.raises(ValueError, match="not a transformers text model.*all-MiniLM-L6-v2"):
        build(folder, rows())


def _points(workspace, run_id: int) -> dict[str, list[int]]:
    """Metric name -> steps at which it was recorded, read from the workspace's database."""
    from sqlalchemy import select

    from db import Database, MetricPoint

    database = Database.open(f"sqlite:///{workspace / 'tuneboard.db'}")
    with database.session() as s:
        points = s.execute(select(MetricPoint.name, MetricPoint.step).where(MetricPoint.run_id == run_id)).all()
    out: dict[str, list[int]] = {}
    for name, step in points:
        out.setdefault(name, []).append(step)
    return out


def test_cli_trains_the_shipped_example_and_records_classification_metrics(workspace, tiny_bert):
    ds = cli_json(workspace, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", TASK, "--name", "t")
    assert ds["stats"]["labels"] == ["account", "billing", "delivery", "technical"] and ds["num_rows"] >= 250
    # Asked for explicitly, an SFT run on a classification dataset is refused (without --task the task follows
    # the dataset: tests/models/test_new_user.py).
    refused = cli(workspace, "train", "--task", "sft", "--dataset", "t", "--json")
    assert refused.returncode == 2 and "is a text-classification dataset but the run's task is sft" in refused.stderr
    (workspace.parent / "one.csv").write_text("text,label\n" + "".join(f"row {i},spam\n" for i in range(12)))
    refused = cli(workspace, "datasets", "add", str(workspace.parent / "one.csv"), "--task", TASK, "--json")
    assert refused.returncode == 2 and "at least two classes" in refused.stderr  # refused at import already

    run = cli_json(
        workspace, "train", "--task", TASK, "--dataset", "t", "--model", str(tiny_bert),
        "--epochs", "2", "--batch-size", "64", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    m = run["metrics"]
    assert 0 <= m["eval_accuracy"] <= 1 and {"eval_f1_macro", "eval_precision_macro", "eval_recall_macro"} <= set(m)
    assert m["confusion_matrix"]["labels"] == ds["stats"]["labels"]
    matrix = m["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == ds["splits"]["validation"]  # every validation row counted once
    assert set(m["per_class"]) == set(ds["stats"]["labels"]) and "f1" in m["per_class"]["billing"]
    assert run["config"]["method"] == "full" and run["config"]["cutoff_len"] == 128  # the task's defaults
    points = _points(workspace, run["id"])
    assert len(set(points["eval_accuracy"])) >= 2  # evaluated after each epoch (and at the end)
    saved = workspace / "runs" / str(run["id"]) / "model"
    assert (saved / "model.safetensors").is_file() and (saved / "tokenizer.json").is_file()
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(saved)
    assert loaded.config.id2label == dict(enumerate(ds["stats"]["labels"]))


@pytest.mark.slow
def test_bundled_minilm_learns_the_shipped_example_with_default_settings(workspace):
    """The results-quality goal: >= 90% validation accuracy with nothing but the task chosen (~1-2 min)."""
    cli_json(workspace, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", TASK, "--name", "t")
    run = cli_json(workspace, "train", "--task", TASK, "--dataset", "t", "--wait")
    assert run["status"] == "completed", run.get("reason")
    assert run["model"] == "all-MiniLM-L6-v2"
    assert run["metrics"]["eval_accuracy"] >= 0.9, run["metrics"]["confusion_matrix"]
    # scored as `evaluate` scores a classifier: on the example's own test split, never trained on
    shown = cli_json(workspace, "evaluate", "--model", f"run:{run['id']}", "--suite", "dataset:t", "--wait")
    (result,) = shown["results"]
    test_rows = cli_json(workspace, "datasets", "show", "t")["splits"]["test"]
    assert (result["suite"], result["metric"], result["n"]) == ("dataset:t:test", "accuracy", test_rows)
    assert result["score"] >= 90, result
