"""Pruning: the model really shrinks and is unchanged where nothing was pruned; a pruned run is recorded
beside its original; bad requests are refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli, cli_json


def _tiny_classifier(layers: int = 4):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32, num_labels=3,
    )  # fmt: skip
    return BertForSequenceClassification(config).eval()


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_neurons_that_give_nothing_are_removed_without_changing_outputs(tmp_path):
    import torch
    from transformers import BertForSequenceClassification

    from backend.compress.prune import apply, parse

    model = _tiny_classifier()
    ids = torch.randint(0, 60, (4, 9))
    with torch.no_grad():
        for layer in model.bert.encoder.layer:  # 20 of 64 neurons per layer write nothing back
            layer.output.dense.weight[:, 10:30] = 0
        before, count = model(input_ids=ids).logits, _params(model)
        report = apply(model, parse("neurons:0.3"))
        after = model(input_ids=ids).logits
    assert report["neurons"] == {"neurons_per_layer": 45, "of": 64}
    assert _params(model) == count - 4 * 19 * (32 + 1 + 32)  # 19 neurons x (row in + bias + column out) x 4
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    model.save_pretrained(tmp_path)  # the config describes the smaller model: it loads back as it is
    loaded = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, after)


def test_heads_that_write_nothing_are_removed_and_the_smaller_model_loads_back_as_it_is(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    from backend.compress.prune import apply, parse
    from backend.shrink import HEADS_KEY, from_pretrained

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, num_labels=3,
    )  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(0, 60, (4, 9))
    with torch.no_grad():
        for layer in model.bert.encoder.layer:  # heads 1 and 3 (8 dims each) read values of zero: they add nothing
            for head in (1, 3):
                layer.attention.self.value.weight[head * 8 : (head + 1) * 8] = 0
                layer.attention.self.value.bias[head * 8 : (head + 1) * 8] = 0
        before, count = model(input_ids=ids).logits, _params(model)
        report = apply(model, parse("heads:0.5"))
        after = model(input_ids=ids).logits
    assert report["heads"] == {"heads_per_layer": 2, "of": 4} and getattr(model.config, HEADS_KEY) == [2, 2, 2]
    assert _params(model) == count - 3 * 2 * 8 * (3 * (32 + 1) + 32)  # 2 heads x 8 dims x (q, k, v rows + o cols)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    model.save_pretrained(tmp_path)
    # As training and export load a folder: the config's head count alone would rebuild 4 heads per layer.
    loaded = from_pretrained(AutoModelForSequenceClassification, tmp_path, num_labels=3).eval()
    assert _params(loaded) == _params(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, after)


def test_layers_and_unstructured_keep_what_they_do_not_prune():
    import torch

    from backend.compress.prune import apply, parse

    model = _tiny_classifier(layers=4)
    kept = {i: {k: v.clone() for k, v in model.bert.encoder.layer[i].state_dict().items()} for i in range(4)}
    count = _params(model)
    report = apply(model, parse("layers:1"))
    assert report["layers"]["kept_layers"] == [0, 2, 3] and model.config.num_hidden_layers == 3
    assert _params(model) < count
    for new, old in enumerate(report["layers"]["kept_layers"]):
        for key, value in model.bert.encoder.layer[new].state_dict().items():
            assert torch.equal(value, kept[old][key])
    weights = [m.weight for m in model.bert.encoder.layer.modules() if isinstance(m, torch.nn.Linear)]
    original = [w.detach().clone() for w in weights]
    report = apply(model, parse("unstructured:0.5"))["unstructured"]
    assert report["sparsity"] == pytest.approx(0.5, abs=1e-3)
    weights = [m.weight.detach() for m in model.bert.encoder.layer.modules() if isinstance(m, torch.nn.Linear)]
    for w, o in zip(weights, original, strict=True):  # the weights that stay are untouched
        assert torch.equal(w[w != 0], o[w != 0])
    kept_ = torch.cat([o[w != 0].abs() for w, o in zip(weights, original, strict=True)])
    gone = torch.cat([o[w == 0].abs() for w, o in zip(weights, original, strict=True)])
    assert float(gone.max()) <= float(kept_.min())  # the smallest weights went, across all layers (global L1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("unstructured:0", "between 0 and 1"),
        ("unstructured:1.5", "between 0 and 1"),
        ("neurons:1", "between 0 and 1"),
        ("layers:0", "whole number of layers"),
        ("layers:1.5", "whole number of layers"),
        ("filters:0.3", "is not KIND:AMOUNT"),
        ("neurons:0.3,neurons:0.2", "each kind may appear once"),
    ],
)
def test_bad_prune_requests_are_refused(spec, message):
    from backend.compress.prune import parse

    with pytest.raises(ValueError, match=message):
        parse(spec)


def test_compress_records_a_smaller_run_beside_its_original(teacher):
    ws, original = teacher
    run = cli_json(ws, "compress", str(original), "--prune", "heads:0.5,neurons:0.5,layers:1", "--tolerance", "1")
    m = run["metrics"]
    assert run["status"] == "completed" and run["parent_id"] == original and m["compressed_from"] == original
    assert m["params"] < m["original"]["params"] and m["size_bytes"] < m["original"]["size_bytes"]
    assert m["latency_ms"] > 0 and m["original"]["latency_ms"] > 0 and m["eval_rows"] >= 20
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["original"]["accuracy"] <= 1 and m["flagged"] is False
    assert m["pruned"]["layers"] == {"kept_layers": [1], "of": 2} and "sparse_note" not in m
    assert m["pruned"]["heads"] == {"heads_per_layer": 1, "of": 2}
    shown = cli_json(ws, "runs", "show", str(run["id"]))  # recorded like any run, and exportable like one
    assert shown["metrics"]["original"] == m["original"]
    paths = {}
    for fmt in ("merged", "int8", "onnx-int8"):  # its fewer heads load back in every format, and are checked
        out = cli_json(ws, "export", str(run["id"]), "--format", fmt)
        assert out["verification"]["ok"], (fmt, out["verification"])
        paths[fmt] = Path(out["path"])
    assert "attention heads of this model were pruned" in (paths["merged"] / "README.md").read_text()
    sparse = cli_json(ws, "compress", str(original), "--prune", "unstructured:0.6", "--tolerance", "1")["metrics"]
    assert sparse["nonzero_params"] < sparse["original"]["nonzero_params"] and "stored dense" in sparse["sparse_note"]


def test_compress_refuses_bad_requests_and_writes_nothing(teacher):
    from backend.config import RunConfig
    from backend.runs.queue import create_run
    from backend.services import Services

    ws, original = teacher
    services = Services.open(ws)
    queued = create_run(services.database, services.workspace, RunConfig.from_dict({
        "dataset": "support_tickets", "task": "text-classification", "max_steps": 1,
    }))  # fmt: skip
    before = cli_json(ws, "runs", "list")
    folders = sorted(p.name for p in (ws / "runs").iterdir())
    for args, message in [
        ([str(queued.id), "--prune", "neurons:0.3"], f"run {queued.id} is queued; only a completed run"),
        ([str(original), "--prune", "unstructured:1.2"], "must be a share between 0 and 1"),
        ([str(original), "--prune", "unstructured:0.5", "--recover-steps", "3"], "refills the zeros"),
        ([str(original), "--prune", "layers:2"], "would remove all 2 layers"),
    ]:
        proc = cli(ws, "compress", *args, "--json")
        assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert cli_json(ws, "runs", "list") == before and sorted(p.name for p in (ws / "runs").iterdir()) == folders
    cli_json(ws, "runs", "cancel", str(queued.id))


@pytest.mark.slow
def test_recovery_is_an_ordinary_short_run_measured_beside_the_original(teacher):
    ws, original = teacher
    run = cli_json(ws, "compress", str(original), "--prune", "heads:0.5,neurons:0.3", "--recover-steps", "2", "--wait")
    m = run["metrics"]
    assert run["status"] == "completed" and run["config"]["max_steps"] == 2 and run["step"] == 2
    assert m["compression"] == "prune+recover" and m["compressed_from"] == original
    assert m["params"] < m["original"]["params"] and 0 <= m["accuracy"] <= 1
    variant = cli_json(ws, "runs", "show", str(run["parent_id"]))
    assert variant["metrics"]["compressed_from"] == original and run["config"]["model"].endswith("/model")


def test_variants_are_listed_beside_the_original_for_the_table_and_chart(teacher):
    """`compress RUN` without --prune (and the Export tab's Compress section) list the run and its variants."""
    from webui.tabs.export_compress import variants_view

    ws, original = teacher
    pruned = cli_json(ws, "compress", str(original), "--prune", "layers:1", "--tolerance", "0")
    listed = cli_json(ws, "compress", str(original))["variants"]
    assert listed[0]["run_id"] == original and listed[0]["kind"] == "original"
    mine = next(v for v in listed if v["run_id"] == pruned["id"])
    assert mine["kind"] == "prune" and mine["params"] < listed[0]["params"]
    assert mine["flagged"] == pruned["metrics"]["flagged"]  # tolerance 0: any lost row flags it
    assert listed[0]["latency_ms"] and listed[0]["size_bytes"] > mine["size_bytes"]
    table, points = variants_view(listed)
    assert len(table) == len(listed) and f"{pruned['id']} · " in table.iloc[len(listed) - 1, 0]
    assert len(points) == len(listed) and points["size_mb"].max() == round(listed[0]["size_bytes"] / 1e6, 1)
