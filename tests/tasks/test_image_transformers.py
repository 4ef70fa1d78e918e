"""Image classification with a transformers image classifier (AutoModelForImageClassification): a Hub
model's folder is fine-tuned like a torchvision network, saved as transformers saves it, and reloaded."""

import torch

from backend.config import RunConfig
from backend.tasks import image_classification as ic
from tests.tasks.test_image_classification import noisy_rows, png, rows, trained_adapter_logits


def build(folder, train, evals=(), **settings):
    cfg = RunConfig.from_dict({"task": "image-classification", "dataset": "d", "model": str(folder), **settings})
    return ic.build(cfg, folder, list(train), list(evals), torch.float32)


def test_a_hub_vit_gets_a_new_head_its_own_size_and_normalization(tiny_vit):
    spec = ic.read_spec(tiny_vit, "tiny-vit")
    assert spec["arch"] == "hf:vit" and spec["classes"] == []  # ImageNet's labels are not the data set's
    built = build(tiny_vit, rows(), [{"image": png("RGB", 40, (255, 0, 0)), "label": "dog"}])
    net = built.model.net
    assert net.config.num_labels == 2 and net.classifier.out_features == 2
    pixels = built.eval[0]["pixel_values"]
    assert pixels.shape == (3, 32, 32)  # the processor's size, not the images' (8 pixels)
    assert pixels[0].mean().item() == 1.0 and pixels[1].mean().item() == -1.0  # (x - 0.5) / 0.5, not ImageNet's
    batch = built.collator([built.train[i] for i in range(4)])
    out = built.model(**batch)
    assert out.logits.shape == (4, 2) and out.loss > 0
    assert built.final_metrics(None)["weights"] == f"pretrained: {tiny_vit.name}"
    assert built.layer_groups == [net.vit.embeddings, *net.vit.layers]


def test_another_image_size_interpolates_the_position_embeddings(tiny_vit):
    built = build(tiny_vit, rows(), image_size=48)
    assert built.model.extra == {"interpolate_pos_encoding": True}
    batch = built.collator([built.train[i] for i in range(2)])
    assert batch["pixel_values"].shape[-1] == 48 and built.model(**batch).logits.shape == (2, 2)


def test_lora_run_saves_a_folder_transformers_loads_with_the_classes(tiny_vit, tmp_path):
    from transformers import AutoModelForImageClassification

    built = build(tiny_vit, noisy_rows(), method="lora", lora_rank=2, lora_alpha=4)
    trainable = [n for n, p in built.model.named_parameters() if p.requires_grad]
    assert any("attention.q_proj.lora_A" in n for n in trainable)
    assert any("classifier.modules_to_save" in n for n in trainable)
    pixels, expected = trained_adapter_logits(built)
    info = {"format": "transformers", "arch": "hf:vit", "classes": ["cat", "dog"], "image_size": 32}
    ic.save_model(built.model, info | {"mean": [0.5] * 3, "std": [0.5] * 3}, tmp_path / "m")

    loaded, spec = ic.load_model(tmp_path / "m")
    assert spec["classes"] == ["cat", "dog"] and spec["mean"] == [0.5] * 3 and spec["image_size"] == 32
    elsewhere = AutoModelForImageClassification.from_pretrained(tmp_path / "m").eval()
    assert elsewhere.config.id2label == {0: "cat", 1: "dog"}
    with torch.no_grad():
        assert torch.allclose(loaded(pixels).logits, expected, atol=1e-4)
        assert torch.allclose(elsewhere(pixel_values=pixels).logits, expected, atol=1e-4)
    again = build(tmp_path / "m", rows())  # fine-tuned again: its own head is kept
    assert again.final_metrics(None)["weights"] == "fine-tuned: m"
    with torch.no_grad():
        assert torch.allclose(again.model.net(pixel_values=pixels).logits, expected, atol=1e-4)


def test_freeze_trains_the_top_layer_and_the_head(tiny_vit):
    from backend.training.methods import prepare

    cfg = RunConfig.from_dict({"task": "image-classification", "method": "freeze", "freeze_layers": 1})
    built = build(tiny_vit, rows(), method="freeze", freeze_layers=1)
    prepare(built.model, cfg, built.layer_groups)
    trained = {n for n, p in built.model.named_parameters() if p.requires_grad}
    assert any(".layers.1." in n for n in trained) and any("classifier" in n for n in trained)
    assert not any(".layers.0." in n or "embeddings" in n for n in trained)


def test_the_fit_check_counts_a_hub_image_classifier(tiny_vit, tmp_path):
    from backend.models.fit import estimate_for

    def parts(batch: int) -> dict:
        cfg = RunConfig.from_dict({"task": "image-classification", "model": str(tiny_vit), "batch_size": batch})
        return estimate_for(cfg, tmp_path)["parts"]

    small, large = parts(8), parts(512)
    params_mb = sum(p.numel() for p in ic.load_model(tiny_vit)[0].parameters()) * 4 / 2**20
    assert small["weights"] >= 0.9 * params_mb and small["optimizer"] > small["weights"]  # AdamW keeps two moments
    # activations are counted at the model's own 32 pixels (the meta forward at 224 failed: 0 before)
    assert 0 < small["activations"] < large["activations"]
