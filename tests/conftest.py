"""Shared fixtures: a throw-away workspace, a tiny random chat model, the CLI as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Tests never reach a hub: everything they load is built here or shipped in a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The tests' own torch work (in-process trainers, scorers) shares the 2 cores with the other test process and
# the workers they start: OpenMP threads that spin while they wait make every small op wait for a preempted
# spinner (a GRPO step of the bundled model: 23 s instead of 2 s at load 8). Sleep while waiting, as the
# app and its workers do (backend/cpu.py); before anything imports torch.
from backend.cpu import wait_politely  # noqa: E402

wait_politely()


def pytest_configure(config):
    """Uploads and downloads that the tests' apps (here and in app subprocesses) put in Gradio's cache go
    to one folder of this session, removed when it ends, instead of piling up in /tmp/gradio."""
    config.gradio_cache = tempfile.mkdtemp(prefix="tb-test-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = config.gradio_cache


def pytest_unconfigure(config):
    shutil.rmtree(config.gradio_cache, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def shared_models_dir(tmp_path_factory):
    """Convert the bundled model once per test session, for every workspace (and app) the tests start."""
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one folder for every xdist worker: converted once (a file lock)
        path = tmp_path_factory.getbasetemp().parent / "models"
        path.mkdir(exist_ok=True)
    else:
        path = tmp_path_factory.mktemp("models")
    old = os.environ.get("TUNEBOARD_MODELS_DIR")
    os.environ["TUNEBOARD_MODELS_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TUNEBOARD_MODELS_DIR", None)
    else:
        os.environ["TUNEBOARD_MODELS_DIR"] = old


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with a real ChatML tokenizer: trains a step in well under a second."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    target = tmp_path_factory.mktemp("tiny-chat")
    tokenizer = _tiny_chatml_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _tiny_chatml_tokenizer():
    """A byte-level BPE with ChatML markers, trained on a few lines (English and Chinese) in a second."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [json.dumps(r, ensure_ascii=False) for r in json.loads((EXAMPLES / "identity.json").read_text())]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus + ["user assistant system plus is what"], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>")
    tokenizer.chat_template = CHATML
    return tokenizer


@pytest.fixture
def workspace(tmp_path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def services(workspace):
    from backend.services import Services

    return Services.open(workspace)


@pytest.fixture
def queued(services, tiny_model, tmp_path):
    """A factory: queue a LoRA run of the tiny model on a small dataset (on whichever `services` the test uses)."""
    from backend.config import RunConfig
    from backend.data import import_file
    from backend.runs.queue import create_run

    import_file(services.database, services.workspace, write_alpaca(tmp_path / "sums.json", n=16), name="sums")

    def make(**settings) -> int:
        cfg = RunConfig(dataset="sums", model=str(tiny_model), batch_size=2, lora_rank=4, **settings)
        return create_run(services.database, services.workspace, cfg).id

    return make


def cli(workspace: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m backend.cli --workspace WS ARGS` exactly as a user would."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        stop_workers(workspace)
        raise


def stop_workers(workspace: Path) -> None:
    """Kill the workers of runs this test started in `workspace`. Workers outlive the command that
    queued them (by design), so a `--wait` that timed out would leave its run training and slowing
    every test after it."""
    from backend.workspace import Workspace
    from db import Database, Run, RunStatus

    database = Database.open(Workspace.resolve(workspace).database_url, upgrade=False)
    with database.session() as s:
        pids = [p for p in s.scalars(select(Run.pid).where(Run.status == RunStatus.running)) if p]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def cli_json(workspace: Path, *args: str, timeout: float = 600):
    proc = cli(workspace, *args, "--json", timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def add_digits(ws: Path, folder: Path, limit: int = 60) -> Path:
    """The shipped digits example rendered to an image-folder zip of `limit` images, added to `ws` as 'digits'."""
    digits = folder / "digits.zip"
    script = [sys.executable, str(EXAMPLES / "digits_to_imagefolder.py"), "--out", str(digits), "--limit", str(limit)]
    subprocess.run(script, cwd=ROOT, check=True, capture_output=True)
    cli_json(ws, "datasets", "add", str(digits), "--task", "image-classification", "--name", "digits")
    return digits


def write_alpaca(path: Path, rows: list[dict] | None = None, n: int = 12) -> Path:
    rows = rows or [
        {"instruction": f"What is {i} plus {i}?", "input": "", "output": f"{i} plus {i} is {2 * i}."} for i in range(n)
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


TINY_BERT_WORDS = [
    "great",
    "awful",
    "movie",
    "film",
    "plot",
    "acting",
    "loved",
    "hated",
    "boring",
    "superb",
    "the",
    "a",
    "was",
    "and",
    "it",
]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT encoder (no head, like MiniLM's checkpoint) with a word-level WordPiece vocab."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_BERT_WORDS]) + "\n"
    )
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    """A 2-layer ViT image classifier (3 ImageNet-like labels, 32-pixel images, mean and std 0.5) with its
    image processor: what a Hub id such as google/vit-base-patch16-224 downloads, in miniature."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label={0: "tabby", 1: "goldfish", 2: "tench"},
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        folder
    )
    return folder


from tests.pgserver import database_url, postgres_server  # noqa: E402, F401 - a real PostgreSQL for DB tests
