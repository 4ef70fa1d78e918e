"""Channel pruning of a CNN image classifier: the network really shrinks, loads back with its pruned widths
wherever a run's model is loaded (recovery training, exports), and is refused for what it cannot prune."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import add_digits, cli, cli_json


def test_pruned_channels_load_back_with_their_widths(tmp_path):
    import torch
    import torchvision

    from backend.compress.prune import apply, parse
    from backend.shrink import module_shapes
    from backend.tasks import image_classification as ic

    torch.manual_seed(0)
    net = torchvision.models.get_model("resnet18", weights=None, num_classes=4)
    model = ic.ImageClassifier(net, "resnet18").eval()
    count = sum(p.numel() for p in model.parameters())
    report = apply(model, parse("channels:0.3"))["channels"]
    assert report["params_after"] == sum(p.numel() for p in model.parameters()) < 0.6 * count
    assert model.net.fc.out_features == 4  # the classes stay
    spec = {"format": ic.FORMAT, "arch": "resnet18", "classes": list("abcd"), "image_size": 32}
    ic.save_model(model, {**spec, "module_shapes": module_shapes(model.net)}, tmp_path)
    loaded, _ = ic.load_model(tmp_path)  # torchvision builds full widths; the saved ones are restored first
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)


@pytest.mark.slow
def test_a_pruned_cnn_is_measured_exported_and_recovered_like_any_variant(tmp_path):
    ws = tmp_path / "ws"
    add_digits(ws, tmp_path)
    common = ["--dataset", "digits", "--max-steps", "2", "--batch-size", "8", "--image-size", "32", "--wait"]
    original = cli_json(ws, "train", "--task", "image-classification", "--model", "mobilenet_v3_small", *common)
    assert original["status"] == "completed", original.get("reason")
    before = cli_json(ws, "runs", "list")
    for spec, message in [("neurons:0.3", "is for transformers"), ("channels:1.2", "between 0 and 1")]:
        proc = cli(ws, "compress", str(original["id"]), "--prune", spec, "--json")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert cli_json(ws, "runs", "list") == before  # refused: nothing recorded

    run = cli_json(ws, "compress", str(original["id"]), "--prune", "channels:0.3", "--tolerance", "1")
    m = run["metrics"]
    assert run["status"] == "completed" and m["compressed_from"] == original["id"]
    assert m["params"] < 0.7 * m["original"]["params"] and m["size_bytes"] < m["original"]["size_bytes"]
    assert 0 <= m["accuracy"] <= 1 and m["eval_rows"] > 0 and m["latency_ms"] > 0
    for fmt in ("onnx", "int8"):  # the pruned widths load back in each format, and are checked
        out = cli_json(ws, "export", str(run["id"]), "--format", fmt)
        assert out["verification"]["ok"], (fmt, out["verification"])
    recovered = cli_json(
        ws, "compress", str(original["id"]), "--prune", "channels:0.3", "--recover-steps", "1", "--wait"
    )
    assert recovered["status"] == "completed", recovered.get("reason")
    assert recovered["metrics"]["compression"] == "prune+recover"
    assert recovered["metrics"]["params"] == m["params"]  # it trained the pruned network, not a full-width one
    assert Path(recovered["config"]["model"]).name == "model"
