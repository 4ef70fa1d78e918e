"""Every export format of real runs, read back by the real runtimes (onnxruntime, the gguf reader,
transformers' GGUF loader, torch.ao) and compared with the run's model; refusals leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, cli, cli_json, write_alpaca


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, tiny_bert):
    """A workspace with a completed chat LoRA run (tiny Llama) and a text classifier (tiny BERT, full)."""
    tmp = tmp_path_factory.mktemp("exports")
    ws = tmp / "ws"
    cli_json(ws, "datasets", "add", str(write_alpaca(tmp / "chat.json", n=12)), "--name", "chat")
    cli_json(ws, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", "text-classification")
    chat = cli_json(
        ws, "train", "--dataset", "chat", "--model", str(tiny_model), "--method", "lora", "--lora-rank", "4",
        "--max-steps", "1", "--batch-size", "4", "--wait",
    )  # fmt: skip
    tickets = cli_json(
        ws, "train", "--task", "text-classification", "--dataset", "support_tickets", "--model", str(tiny_bert),
        "--method", "full", "--max-steps", "6", "--batch-size", "16", "--lr", "5e-3", "--wait",
    )  # fmt: skip
    assert chat["status"] == tickets["status"] == "completed", (chat.get("reason"), tickets.get("reason"))
    return ws, chat["id"], tickets["id"]


def export(ws: Path, run_id: int, fmt: str, **kw) -> dict:
    """backend.export.exporter in this process (the CLI's path is covered by the gguf-q8_0 and refusal tests)."""
    from backend.export.exporter import export_run
    from backend.services import Services

    services = Services.open(ws)
    return json.loads(json.dumps(export_run(services.database, services.workspace, run_id, fmt, **kw), default=str))


@pytest.mark.parametrize("fmt", ["int8", pytest.param("onnx", marks=pytest.mark.slow), "onnx-int8"])
def test_classifier_exports_load_back_and_report_accuracy(runs, fmt):
    ws, _, clf = runs
    out = export(ws, clf, fmt)
    check = out["verification"]
    assert check["ok"] and check["format"] == fmt and out["size_bytes"] > 0
    assert check["eval_rows"] >= 20  # the run's held-out validation rows
    assert 0 <= check["source_accuracy"] <= 1 and check["accuracy_delta"] == pytest.approx(
        check["accuracy"] - check["source_accuracy"]
    )
    assert check["latency_ms"] > 0 and check["load_seconds"] > 0
    folder = Path(out["path"])
    if fmt == "int8":  # torch.ao, stored as safetensors and rebuilt without pickle
        from safetensors import safe_open

        from backend.export.int8 import load_int8

        with safe_open(folder / "model.int8.safetensors", "pt") as f:
            assert any(k.endswith("weight_int8") for k in f.keys())  # noqa: SIM118 - safe_open is no dict
        assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
        assert load_int8(folder) is not None
    else:  # onnxruntime runs the graph on any batch and sequence length
        import numpy as np
        import onnxruntime as ort
        from transformers import AutoTokenizer

        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        tokenizer = AutoTokenizer.from_pretrained(folder)
        enc = tokenizer(["great movie", "the plot was boring and the acting awful"], padding=True, return_tensors="np")
        logits = session.run(["logits"], {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})[0]
        labels = json.loads((folder / "config.json").read_text())["id2label"]
        assert logits.shape == (2, len(labels)) and np.isfinite(logits).all()
    if fmt == "onnx":
        assert check["max_abs_logit_diff"] < 1e-3 and check["accuracy_delta"] == 0
    shown = cli_json(ws, "runs", "show", str(clf))
    assert any(a["kind"] == fmt and a["verification"]["ok"] for a in shown["artifacts"])


@pytest.mark.parametrize(
    "fmt",
    [pytest.param("gguf-f16", marks=pytest.mark.slow), "gguf-q8_0", pytest.param("gguf-q4_0", marks=pytest.mark.slow)],
)
def test_gguf_export_has_tensors_tokenizer_and_modelfile(runs, fmt):
    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    from backend.export.sources import load_source
    from backend.runs.results import model_folder
    from backend.services import Services

    ws, chat, _ = runs
    out = cli_json(ws, "export", str(chat), "--format", fmt) if fmt == "gguf-q8_0" else export(ws, chat, fmt)
    check, folder = out["verification"], Path(out["path"])
    (path,) = folder.glob("*.gguf")
    reader = gguf.GGUFReader(path)
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output_norm.weight"} <= names
    assert "output.weight" not in names  # the tiny model ties its head to the embedding
    quant = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_0": "Q4_0"}[fmt]
    assert reader.get_tensor(list(names).index("blk.0.attn_q.weight")) is not None
    assert {t.tensor_type.name for t in reader.tensors if t.name == "blk.0.attn_q.weight"} == {quant}
    fields = reader.fields
    assert bytes(fields["tokenizer.ggml.model"].parts[-1]).decode() == "gpt2"
    assert len(fields["tokenizer.ggml.tokens"].data) == check["gguf_tokens"] > 500
    assert len(fields["tokenizer.ggml.merges"].data) > 0 and "tokenizer.ggml.eos_token_id" in fields
    assert "<|im_start|>" in bytes(fields["tokenizer.chat_template"].parts[-1]).decode()
    modelfile = (folder / "Modelfile").read_text()
    assert f"FROM ./{path.name}" in modelfile and "{{ .Prompt }}" in modelfile
    assert "<|im_start|>user" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    card = (folder / "README.md").read_text()  # the model card: where it came from, how well, how checked
    assert f"run {chat}, method **lora**" in card and "dataset **chat**" in card
    assert "`max_steps`: 1" in card and "`lora_rank`: 4" in card and "`train_loss`:" in card
    assert f"`max_abs_logit_diff`: {check['max_abs_logit_diff']}" in card
    # transformers reads it back (dequantized) and it tracks the run's model within the format's tolerance
    services = Services.open(ws)
    source = load_source("sft", *model_folder(services.database, services.workspace, chat)).model
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=path.name)
    ids = torch.tensor([[1, 5, 9, 42, 7, 100]])
    with torch.no_grad():
        a, b = source(ids).logits, loaded(ids).logits
    assert float((a - b).abs().max()) / float(a.abs().max()) <= check["tolerance"]["rel_logit_diff"]
    assert check["tokenizer_round_trip"] and 0 <= check["greedy_agreement"] <= 1 and check["prompts"] == 3


@pytest.mark.slow
def test_chat_int8_and_onnx_exports_agree(runs):
    ws, chat, _ = runs
    onnx = export(ws, chat, "onnx")["verification"]
    assert onnx["greedy_agreement"] == 1.0 and onnx["rel_logit_diff"] < 1e-4
    int8 = export(ws, chat, "int8")["verification"]
    assert int8["ok"] and int8["rel_logit_diff"] <= int8["tolerance"]["rel_logit_diff"]


def test_refusals_leave_nothing(runs, monkeypatch):
    from backend.export import verify as export_verify
    from backend.export.exporter import export_run
    from backend.services import Services

    ws, chat, clf = runs
    proc = cli(ws, "export", str(chat), "--format", "tflite", "--json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "format 'tflite' is not supported" in proc.stderr
    proc = cli(ws, "export", str(clf), "--format", "gguf-q8_0", "--json")
    assert proc.returncode == 2 and "text-classification run exports as" in proc.stderr
    services = Services.open(ws)
    before = len(cli_json(ws, "runs", "show", str(clf))["artifacts"])
    # outside its tolerance: refused with the figure that missed, folder gone, no record
    monkeypatch.setitem(export_verify.TOLERANCES, "int8", export_verify.Tolerance(1e-9, 0.0, None))
    target = ws / "strict-int8"
    with pytest.raises(ValueError, match=r"int8 export refused: its logits differ .* over the 1e-09"):
        export_run(services.database, services.workspace, clf, "int8", out=target)
    assert not target.exists() and not Path(f"{target}.zip").exists()
    assert len(cli_json(ws, "runs", "show", str(clf))["artifacts"]) == before
    # a run that did not complete
    from backend.config import RunConfig
    from backend.runs.queue import create_run

    queued = create_run(services.database, services.workspace, RunConfig(dataset="chat", model="SmolLM2-135M-Instruct"))
    proc = cli(ws, "export", str(queued.id), "--format", "onnx", "--out", str(ws / "never"), "--json")
    assert proc.returncode == 2 and f"run {queued.id} is queued; only a completed run" in proc.stderr
    assert not (ws / "never").exists() and not (ws / "exports" / str(queued.id)).exists()
    # a hub push without a token changes nothing
    proc = cli(ws, "export", str(clf), "--format", "onnx", "--push-to", "me/tickets", "--out", str(ws / "p"), "--json")
    assert proc.returncode == 2 and "HF_TOKEN" in proc.stderr and not (ws / "p").exists()


def test_disk_check_names_folder_and_need(runs, monkeypatch):
    import shutil
    from collections import namedtuple

    from backend.export.exporter import export_run
    from backend.services import Services

    ws, chat, _ = runs
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    services = Services.open(ws)
    target = ws / "full-disk"
    with pytest.raises(ValueError, match=r"not enough free disk for this export in .*full-disk: it needs about"):
        export_run(services.database, services.workspace, chat, "gguf-f16", out=target)
    assert not target.exists()


@pytest.mark.slow
def test_image_classifier_exports(tmp_path):
    """MobileNetV3-small on rendered digits: int8 and onnx-int8 load back and report accuracy; no GGUF."""
    from tests.conftest import add_digits

    ws = tmp_path / "ws"
    add_digits(ws, tmp_path)
    run = cli_json(
        ws, "train", "--task", "image-classification", "--dataset", "digits", "--model", "mobilenet_v3_small",
        "--max-steps", "2", "--batch-size", "8", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    for fmt in ("int8", "onnx-int8"):
        check = export(ws, run["id"], fmt)["verification"]
        assert check["ok"] and check["eval_rows"] > 0 and "accuracy_delta" in check
    proc = cli(ws, "export", str(run["id"]), "--format", "gguf-f16", "--json")
    assert proc.returncode == 2 and "image-classification run exports as merged, int8, onnx, onnx-int8" in proc.stderr


def test_a_push_to_an_unreachable_hub_is_refused_before_exporting(monkeypatch):
    """Offline, a push is refused at once (not after minutes of exporting); '.invalid' never resolves."""
    from backend.export import hub as export_hub

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(export_hub, "HUB_HOST", "hub.invalid")
    with pytest.raises(ValueError, match=r"the Hugging Face Hub \(hub.invalid\) is unreachable .*nothing was exported"):
        export_hub.check_can_push("me/tickets")


def test_the_zip_holds_the_folder_with_weights_stored_and_text_deflated(tmp_path):
    import zipfile

    from backend.export.exporter import zip_folder

    folder = tmp_path / "merged"
    (folder / "sub").mkdir(parents=True)
    files = {
        "model.safetensors": bytes(range(256)) * 4096,
        "config.json": b'{"a": 1}' * 500,
        "sub/model.gguf": b"\x00" * 100_000,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    archive = zip_folder(folder)
    assert archive == tmp_path / "merged.zip"
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert {n: zf.read(n) for n in zf.namelist()} == files  # the whole folder, byte for byte
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert kinds["model.safetensors"] == kinds["sub/model.gguf"] == zipfile.ZIP_STORED
    assert kinds["config.json"] == zipfile.ZIP_DEFLATED


def test_a_zip_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    import zipfile

    from backend.export.exporter import zip_folder

    folder = tmp_path / "onnx"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"x" * 1000)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        zip_folder(folder)
    assert not (tmp_path / "onnx.zip").exists() and (folder / "model.onnx").is_file()
