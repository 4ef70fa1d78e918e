"""Classifier exports are judged by their predictions on the validation split: a barely trained text
classifier (the bundled MiniLM, logits within a tenth of zero) gets its int8 / onnx-int8 export, which the
bound relative to the largest logit refused, and a broken one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli_json


@pytest.fixture(scope="module")
def barely_trained(tmp_path_factory):
    """Two steps: the new head's logits stay within a tenth of zero, while MiniLM's activations have outliers
    that dynamic int8 rounds by a few hundredths (a random tiny BERT has none: it would not show the problem)."""
    ws = tmp_path_factory.mktemp("verify") / "ws"
    cli_json(ws, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", "text-classification")
    run = cli_json(
        ws, "train", "--task", "text-classification", "--dataset", "support_tickets", "--max-steps", "2",
        "--batch-size", "8", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    return ws, run["id"]


def export(ws: Path, run_id: int, fmt: str, **kw) -> dict:
    from backend.export.exporter import export_run
    from backend.services import Services

    services = Services.open(ws)
    return json.loads(json.dumps(export_run(services.database, services.workspace, run_id, fmt, **kw), default=str))


@pytest.mark.parametrize("fmt", ["int8", pytest.param("onnx-int8", marks=pytest.mark.slow)])
def test_barely_trained_classifier_export_accepted_when_predictions_agree(barely_trained, fmt):
    ws, run = barely_trained
    check = export(ws, run, fmt)["verification"]
    # a real int8 copy: its logits moved. Relative to the largest logit (near zero here) that move is what the
    # old bound refused: above 0.15 when this test was written, 0.037 in one CI run (two steps' rounding
    # depends on the threads the run was given), so the judgement must not rest on it
    assert check["max_abs_logit_diff"] > 0, check
    assert check["ok"] and check["decided_agreement"] >= check["tolerance"]["prediction_agreement"]
    assert check["eval_rows"] >= 20 and check["spread_logit_diff"] <= check["tolerance"]["spread_logit_diff"]
    assert 0 < check["decided_rows"] <= check["eval_rows"] and check["logit_spread"] > 0
    assert -check["accuracy_delta"] <= 0.02 + (1 + check["undecided_flips"]) / check["eval_rows"]


def test_export_whose_predictions_differ_is_refused(barely_trained, monkeypatch):
    """An int8 copy whose head is negated (a broken conversion) predicts other classes: refused, nothing kept."""
    import torch

    from backend.export import int8

    real = int8.quantize

    def broken(model):
        quantized = real(model)
        head = quantized.classifier
        weight, bias = head._weight_bias()
        head.set_weight_bias(torch.quantize_per_tensor(-weight.dequantize(), weight.q_scale(), 0, torch.qint8), -bias)
        return quantized

    monkeypatch.setattr(int8, "quantize", broken)
    ws, run = barely_trained
    target = ws / "broken-int8"
    with pytest.raises(ValueError, match=r"int8 export refused: it predicts the source's class on .* rows the source"):
        export(ws, run, "int8", out=target)
    assert not target.exists() and not Path(f"{target}.zip").exists()
    assert not any(a["path"] == str(target) for a in cli_json(ws, "runs", "show", str(run))["artifacts"])


OK = {"decided_agreement": 1.0, "decided_rows": 40, "undecided_flips": 0, "spread_logit_diff": 0.1}


@pytest.mark.parametrize(
    ("fmt", "figures", "refused"),
    [
        ("int8", {"rel_logit_diff": 0.6, **OK}, None),
        ("int8", {"rel_logit_diff": 0.6, **OK, "decided_agreement": 0.9}, "predicts the source's class on 90.0%"),
        ("int8", {"rel_logit_diff": 0.6, **OK, "decided_agreement": 39 / 40}, None),  # one row is allowed
        ("int8", {"rel_logit_diff": 0.6, **OK, "decided_rows": 0, "decided_agreement": 1.0}, None),
        ("int8", {"rel_logit_diff": 0.1, **OK, "spread_logit_diff": 0.9}, "0.90 of the logits' spread"),
        ("int8", {"rel_logit_diff": 0.1, **OK, "accuracy_delta": -0.1}, "accuracy fell"),
        ("int8", {"rel_logit_diff": 0.1, **OK, "accuracy_delta": -0.1, "undecided_flips": 4}, None),
        ("onnx", {"rel_logit_diff": 1e-2, **OK}, "largest logit"),  # exact formats keep the strict bound
        ("int8", {"rel_logit_diff": 0.6}, "largest logit"),  # no validation rows: the strict bound judges
        ("int8", {"rel_logit_diff": 0.1, **OK, "spread_logit_diff": float("nan")}, "not finite"),
    ],
)
def test_check_judges_classifiers_by_predictions_and_exact_formats_strictly(fmt, figures, refused):
    from backend.export.verify import check

    figures = {"max_abs_logit_diff": 0.01, "logit_spread": 0.02, "source_accuracy": 0.5, "accuracy": 0.5, **figures}
    figures.setdefault("accuracy_delta", 0.0)
    if refused is None:
        check(fmt, figures, rows=40, kind="text-classifier")
    else:
        with pytest.raises(ValueError, match=refused):
            check(fmt, figures, rows=40, kind="text-classifier")
