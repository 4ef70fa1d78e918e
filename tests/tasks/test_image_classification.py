"""Image classification with torchvision: build() on tiny images, saving and reloading, refusals."""

import io
import json

import pytest
import torch
from PIL import Image

from backend.config import RunConfig
from backend.models.catalog import resolve_model
from backend.tasks import image_classification as ic


def png(mode: str = "L", size: int = 8, colour=0) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def rows(n: int = 6) -> list[dict]:
    """Dark 'cat' and light 'dog' squares, in grayscale, RGBA and palette modes."""
    modes = ["L", "RGBA", "P"]
    out = []
    for i in range(n):
        out.append({"image": png(modes[i % 3], 8, 20 if modes[i % 3] != "RGBA" else (20, 20, 20, 255)), "label": "cat"})
        out.append({"image": png("L", 8, 230), "label": "dog", "file": f"dog/{i}.png"})
    return out


def noisy_rows(n: int = 4) -> list[dict]:
    """Random RGB noise: unlike flat squares, it gives every layer's adapter a non-zero gradient."""
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.effect_noise((16, 16), 40 + 20 * i).convert("RGB").save(buf, format="PNG")
        out.append({"image": buf.getvalue(), "label": ["cat", "dog"][i % 2]})
    return out


def build(tmp_path, train, evals=(), **settings):
    cfg = RunConfig.from_dict({"task": "image-classification", "dataset": "d", **settings})
    return ic.build(cfg, resolve_model(cfg.model, tmp_path / "models"), list(train), list(evals), torch.float32)


def test_resnet18_gets_a_new_head_and_a_random_init_note_offline(tmp_path, caplog):
    built = build(tmp_path, rows(), image_size=32)
    net = built.model.net
    assert net.fc.out_features == 2 and built.trainable_params == built.total_params
    item = built.train[0]
    assert item["pixel_values"].shape == (3, 32, 32)  # grayscale and RGBA become RGB
    assert (len(built.train), len(built.eval)) == (9, 3)  # no validation split: a stratified fifth held out
    assert sorted(built.eval.labels) == [0, 1, 1] or sorted(built.eval.labels) == [0, 0, 1]
    batch = built.collator([built.train[i] for i in range(4)])
    out = built.model(**batch)
    assert out.logits.shape == (4, 2) and out.loss > 0
    assert built.final_metrics(None) == {"weights": "random: no ImageNet weights offline", "image_size": 32}
    assert "training starts from random weights" in caplog.text


def test_eval_images_are_resized_and_centre_cropped_not_augmented(tmp_path):
    built = build(tmp_path, rows(), [{"image": png("RGB", 40, (255, 0, 0)), "label": "dog"}], image_size=32)
    first, again = built.eval[0]["pixel_values"], built.eval[0]["pixel_values"]
    assert torch.equal(first, again) and first.shape == (3, 32, 32)
    red = (1 - 0.485) / 0.229  # ImageNet-normalized pure red
    assert first[0].mean().item() == pytest.approx(red, abs=1e-3)


def test_layer_groups_cover_everything_but_the_head(tmp_path):
    built = build(tmp_path, rows(), image_size=32)
    net = built.model.net
    assert built.layer_groups[1:] == [net.layer1, net.layer2, net.layer3, net.layer4]
    grouped = {id(p) for g in built.layer_groups for p in g.parameters()}
    assert {n for n, p in built.model.named_parameters() if id(p) not in grouped} == {"net.fc.weight", "net.fc.bias"}


@pytest.mark.parametrize(
    ("arch", "groups", "head"),
    [
        ("resnet50", 5, {"net.fc"}),
        ("mobilenet_v3_small", 13, {"net.classifier.0", "net.classifier.3"}),
        ("mobilenet_v3_large", 17, {"net.classifier.0", "net.classifier.3"}),
        ("vit_b_16", 13, {"net.encoder.ln", "net.heads.head"}),  # stem (patches, class token, positions) + 12 blocks
    ],
)
def test_every_architecture_lists_stem_then_blocks(tmp_path, arch, groups, head):
    cfg = RunConfig.from_dict({"task": "image-classification", "model": arch, "image_size": 32})
    model, listed = ic.skeleton(cfg, resolve_model(arch, tmp_path))
    assert len(listed) == groups
    grouped = {id(p) for g in listed for p in g.parameters()}
    assert {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if id(p) not in grouped} == head


def test_batch_norm_statistics_follow_a_short_run(tmp_path):
    """MobileNetV3's momentum 0.01 left its running statistics on the first steps after a 5-epoch digits run:
    every test image got one class (10%); 0.1 gave 85.6% (docs/benchmarks.md, the digits distillation)."""
    built = build(tmp_path, rows(), model="mobilenet_v3_small", image_size=32)
    norms = [m for m in built.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and {m.momentum for m in norms} == {0.1}
    assert torch.allclose(norms[0].running_var, torch.ones_like(norms[0].running_var))  # not trained yet
    built.model.train()
    for _ in range(3):  # three training batches move the statistics most of the way (0.01 would move 3%)
        built.model(**built.collator([built.train[i] for i in range(4)]))
    assert not torch.allclose(norms[0].running_var, torch.ones_like(norms[0].running_var), atol=0.2)


def test_saved_model_reloads_with_the_same_predictions(tmp_path):
    built = build(tmp_path, rows(), image_size=32, model="mobilenet_v3_small")
    built.model.eval()
    batch = built.collator([built.train[i] for i in range(3)])

    class FakeTrainer:  # save() takes the Trainer; only its model is read
        model = built.model

    built.save(FakeTrainer, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
    spec = json.loads((tmp_path / "out" / "config.json").read_text())
    assert spec["arch"] == "mobilenet_v3_small" and spec["classes"] == ["cat", "dog"] and spec["image_size"] == 32
    loaded, _ = ic.load_model(tmp_path / "out")
    with torch.no_grad():
        assert torch.allclose(loaded(batch["pixel_values"]).logits, built.model(batch["pixel_values"]).logits)
    # a saved model is a starting point too: with other classes it gets a new head
    again = build(
        tmp_path, [{**r, "label": r["label"] + "-x"} for r in rows()] + rows()[:2], model=str(tmp_path / "out")
    )
    assert again.model.net.classifier[-1].out_features == 4  # cat, cat-x, dog, dog-x
    assert again.final_metrics(None)["weights"] == "fine-tuned: out"


def test_imagenet_weights_come_from_the_torch_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.url
    cached = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    reference = torchvision.models.mobilenet_v3_small().state_dict()
    torch.save(reference, cached)  # a plain tensor dict: loads with weights_only=True
    built = build(tmp_path, rows(), image_size=32, model="mobilenet_v3_small")
    assert built.final_metrics(None)["weights"] == "imagenet"
    assert torch.equal(built.model.net.features[0][0].weight, reference["features.0.0.weight"])


def test_auto_image_size_follows_the_images():
    assert ic.auto_size([{"image": png(size=8)}] * 5) == 32  # tiny digits are not blown up
    assert ic.auto_size([{"image": png(size=100)}] * 5) == 128
    assert ic.auto_size([{"image": png(size=600)}] * 5) == 224  # photos: the ImageNet size


@pytest.mark.parametrize(
    ("train", "settings", "message"),
    [
        ([{"image": png(), "label": "cat"}] * 12, {}, "single class \\('cat'\\)"),
        ([{"text": "hello", "label": "a"}] * 3, {}, "train row 1 \\(no file name\\) has no image bytes"),
        (rows()[:2] + [{"image": b"not an image", "label": "cat", "file": "cat/broken.png"}], {}, "cat/broken.png"),
        (rows(), {"model": "vit_b_16", "image_size": 40}, "multiple of 16"),
        (rows(), {"method": "qlora"}, "qlora is for chat and text models here"),
    ],
)
def test_bad_data_and_settings_are_refused_clearly(tmp_path, train, settings, message):
    with pytest.raises(ValueError, match=message):
        built = build(tmp_path, train, **settings)
        [built.train[i] for i in range(len(built.train))]  # images decode lazily


def test_a_text_model_or_unknown_architecture_is_refused(tmp_path, tiny_model):
    cfg = RunConfig.from_dict({"task": "image-classification", "model": str(tiny_model)})
    with pytest.raises(ValueError, match="not a torchvision image model; .*resnet18"):
        ic.build(cfg, tiny_model, rows(), [], torch.float32)
    (tmp_path / "alex").mkdir()
    (tmp_path / "alex" / "config.json").write_text(json.dumps({"format": ic.FORMAT, "arch": "alexnet"}))
    with pytest.raises(ValueError, match="architecture 'alexnet' is not one of resnet18"):
        ic.build(cfg, tmp_path / "alex", rows(), [], torch.float32)


def test_cli_trains_the_digits_example_and_saves_a_reloadable_model(workspace, tmp_path):
    import subprocess
    import sys

    from tests.conftest import EXAMPLES, ROOT, cli_json
    from tests.tasks.test_text_classification import _points

    zipped = tmp_path / "digits.zip"
    script = [sys.executable, str(EXAMPLES / "digits_to_imagefolder.py"), "--out", str(zipped), "--limit", "100"]
    subprocess.run(script, cwd=ROOT, check=True, capture_output=True)
    task = "image-classification"
    ds = cli_json(workspace, "datasets", "add", str(zipped), "--task", task, "--name", "digits")
    assert ds["stats"]["labels"] == [str(d) for d in range(10)] and ds["num_rows"] == 100

    run = cli_json(
        workspace, "train", "--task", task, "--dataset", "digits", "--model", "mobilenet_v3_small",
        "--epochs", "2", "--batch-size", "40", "--no-image-flip", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    m = run["metrics"]
    assert m["weights"] == "random: no ImageNet weights offline" and m["image_size"] == 32  # 8x8 digits: auto 32
    assert 0 <= m["eval_accuracy"] <= 1 and len(m["confusion_matrix"]["matrix"]) == 10
    assert m["train_rows"] == ds["splits"]["train"]
    assert len(set(_points(workspace, run["id"])["eval_accuracy"])) >= 2  # each epoch
    saved = workspace / "runs" / str(run["id"]) / "model"
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    model, spec = ic.load_model(saved)
    assert spec["classes"] == ds["stats"]["labels"] and spec["arch"] == "mobilenet_v3_small"
    assert model(torch.zeros(1, 3, 32, 32)).logits.shape == (1, 10)


@pytest.mark.parametrize(
    ("arch", "adapted", "head"),
    [
        ("resnet18", "layer1.0.conv1.lora_A", "fc.modules_to_save"),
        ("vit_b_16", "encoder_layer_0.self_attention.lora_A", "heads.modules_to_save"),  # nn.MultiheadAttention
    ],
)
def test_lora_adapts_convolutions_and_attention_and_saves_merged_weights(tmp_path, arch, adapted, head):
    built = build(tmp_path, noisy_rows(), model=arch, image_size=32, method="lora", lora_rank=2, lora_alpha=4)
    trainable = [n for n, p in built.model.named_parameters() if p.requires_grad]
    assert any(adapted in n for n in trainable) and any(head in n for n in trainable)
    assert built.trainable_params < built.total_params / 10
    batch = built.collator([built.train[i] for i in range(2)])
    built.model(**batch).loss.backward()  # gradients reach the adapters (lora_B: lora_A's is 0 while B is)
    grads = [p.grad for n, p in built.model.named_parameters() if adapted.replace("lora_A", "lora_B") in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    pixels, expected = trained_adapter_logits(built)
    ic.save_model(
        built.model,
        {"format": ic.FORMAT, "arch": arch, "classes": ["cat", "dog"], "image_size": 32},
        tmp_path / "m",
    )
    loaded, _ = ic.load_model(tmp_path / "m")
    with torch.no_grad():
        assert torch.allclose(loaded(pixels).logits, expected, atol=1e-4)


def trained_adapter_logits(built) -> tuple:
    """Two training images and the model's logits on them, once its LoRA adapters look trained (lora_B no
    longer zero, so merging them changes the weights)."""
    with torch.no_grad():
        for n, p in built.model.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.05)
    built.model.eval()
    pixels = built.collator([built.train[i] for i in range(2)])["pixel_values"]
    with torch.no_grad():
        return pixels, built.model(pixel_values=pixels).logits


def test_freeze_trains_the_top_stage_and_the_head(tmp_path):
    from backend.training.methods import prepare

    cfg = RunConfig.from_dict({"task": "image-classification", "method": "freeze", "freeze_layers": 1})
    built = build(tmp_path, rows(), image_size=32, method="freeze", freeze_layers=1)
    prepare(built.model, cfg, built.layer_groups)
    assert {n.split(".")[1] for n, p in built.model.named_parameters() if p.requires_grad} == {"layer4", "fc"}


def test_layer_settings_are_checked_before_a_run_is_queued(tmp_path):
    from backend.runs.preflight import preflight

    cfg = RunConfig.from_dict({"task": "image-classification", "method": "freeze", "freeze_layers": 9})
    with pytest.raises(ValueError, match="freeze_layers': 9 is more than the model's 5 layer groups"):
        preflight(cfg, tmp_path)
    text = RunConfig.from_dict({"task": "text-classification", "method": "lora", "lora_targets": "q_proj"})
    with pytest.raises(ValueError, match="no module named q_proj; its linear modules are .*query"):
        preflight(text, tmp_path)  # the bundled MiniLM's names are query, key, value, dense
