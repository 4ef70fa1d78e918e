"""A transformers image classifier named by its Hub id: pulled from the (local) hub, fine-tuned on the
digits, then used as every image run is: predictions, ONNX and int8 exports verified."""

import io

from PIL import Image

from backend.models.catalog import task_models
from tests.conftest import add_digits, cli_json


def test_a_hub_image_classifier_pulls_trains_predicts_and_exports(workspace, local_hub, tmp_path):
    local_hub.clear_cache()
    add_digits(workspace, tmp_path, limit=60)
    run = cli_json(
        workspace, "train", "--task", "image-classification", "--dataset", "digits", "--model", "tiny/vit",
        "--epochs", "3", "--batch-size", "16", "--learning-rate", "1e-3", "--wait", timeout=900,
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    m = run["metrics"]
    assert m["weights"].startswith("pretrained: ") and m["image_size"] == 32  # the model's own size, from the hub
    assert len(m["confusion_matrix"]["matrix"]) == 10 and 0 <= m["eval_accuracy"] <= 1
    [download] = cli_json(workspace, "models", "downloads")
    assert (download["model"], download["status"]) == ("tiny/vit", "completed")
    assert "tiny/vit" in task_models("image-classification")  # the Train tab offers it now that it is on disk
    assert "tiny/vit" not in task_models("sft") and "tiny/vit" not in task_models("text-classification")

    image = io.BytesIO()
    Image.new("L", (8, 8), 0).save(image, format="PNG")
    (tmp_path / "blank.png").write_bytes(image.getvalue())
    said = cli_json(workspace, "predict", str(run["id"]), "--image", str(tmp_path / "blank.png"))
    assert sorted(said["probabilities"]) == [str(d) for d in range(10)] and said["label"] in said["probabilities"]
    assert abs(sum(said["probabilities"].values()) - 1) < 1e-4
    for fmt in ("onnx", "int8"):
        exported = cli_json(workspace, "export", str(run["id"]), "--format", fmt)
        assert exported["verification"]["ok"], exported["verification"]
