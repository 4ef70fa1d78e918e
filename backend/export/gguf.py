"""GGUF export of a Llama-architecture chat model for llama.cpp and Ollama, with an Ollama Modelfile.

Written with the `gguf` package the way llama.cpp's convert_hf_to_gguf.py writes Llama models:
llama.cpp tensor names (gguf.TensorNameMap), q/k projections permuted to llama.cpp's rotary layout,
norms kept in F32, every matrix in F16, Q8_0 or Q4_0 (gguf.quants; Q4_0 keeps the embedding and
output matrices in Q8_0, as llama.cpp's own Q4_0 keeps them at higher precision), and the tokenizer
as metadata (byte-level BPE "gpt2": tokens, token types, merges, special ids, chat template).

    ollama create tuna -f workspace/exports/3/gguf-q8_0/Modelfile
    llama-cli -m workspace/exports/3/gguf-q8_0/model-q8_0.gguf -cnv
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QUANTS = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_0": "Q4_0"}  # format -> GGML type name
FILE_TYPES = {"F16": "MOSTLY_F16", "Q8_0": "MOSTLY_Q8_0", "Q4_0": "MOSTLY_Q4_0"}
MODELFILE = "Modelfile"
STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>")  # kept if in the vocab


def file_name(fmt: str) -> str:
    return f"model-{QUANTS[fmt].lower()}.gguf"


def check_supported(config: Any, tokenizer: Any) -> None:
    """Refuse (ValueError) a model this writer cannot express: not Llama, or not a byte-level BPE vocabulary."""
    if getattr(config, "model_type", "") != "llama":
        raise ValueError(
            f"GGUF export covers Llama-architecture chat models (like SmolLM2); this model is "
            f"'{getattr(config, 'model_type', '?')}': export 'merged' or 'onnx' instead"
        )
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"GGUF export: rope scaling '{rope.get('rope_type')}' is not supported; export 'merged'")
    backend = json.loads(tokenizer.backend_tokenizer.to_str()) if getattr(tokenizer, "is_fast", False) else {}
    model = backend.get("model", {})
    if (
        model.get("type") != "BPE"
        or model.get("byte_fallback")
        or (backend.get("decoder") or {}).get("type") != "ByteLevel"
    ):
        raise ValueError(
            "GGUF export needs a byte-level BPE tokenizer (GPT-2 style, like SmolLM2's); this one is "
            f"{model.get('type', 'not a fast tokenizer')}: export 'merged' instead"
        )


def write_gguf(model: Any, tokenizer: Any, target: Path, fmt: str, name: str) -> Path:
    """Write `model` (an fp32 LlamaForCausalLM) and its tokenizer as one GGUF file in `target`."""
    import gguf

    check_supported(model.config, tokenizer)
    config, qtype = model.config, gguf.GGMLQuantizationType[QUANTS[fmt]]
    path = target / file_name(fmt)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType[FILE_TYPES[QUANTS[fmt]]])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(writer, tokenizer, config)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    state = model.state_dict()
    for key, tensor in state.items():
        if key == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp (and transformers' loader) tie the output to token_embd when output.weight is absent
        gguf_name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"GGUF export: no llama.cpp name for tensor {key}")
        data = tensor.detach().float().cpu().numpy()
        if key.endswith("q_proj.weight"):
            data = _permute(data, n_head, n_head)
        elif key.endswith("k_proj.weight"):
            data = _permute(data, n_head, n_kv)
        _add_tensor(writer, gguf_name, data, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_modelfile(target: Path, gguf_file: str, tokenizer: Any) -> Path:
    """An Ollama Modelfile beside the GGUF: FROM it, the chat template as a Go template, and the stop tokens."""
    template, system = go_template(tokenizer)
    lines = [f"FROM ./{gguf_file}", "", f'TEMPLATE """{template}"""', ""]
    if system:  # the template's own default system turn (SmolLM2 has one): Ollama sends it as .System
        lines += [f'SYSTEM """{system}"""', ""]
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens(tokenizer)]
    path = target / MODELFILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stop_tokens(tokenizer: Any) -> list[str]:
    vocab = tokenizer.get_vocab()
    found = [t for t in STOP_TOKENS if t in vocab]
    eos = tokenizer.eos_token
    return found if eos in found or not eos else [eos, *found]


def go_template(tokenizer: Any) -> tuple[str, str]:
    """(the chat template in Ollama's Go syntax, the default system message the template inserts or "").

    Found by rendering the model's Jinja template with placeholders.

    Rendering a system turn, a user turn and an answer through the model's own template shows the text
    around each role (ChatML's <|im_start|>role ... <|im_end|>, Llama 3's headers, Alpaca's ### lines),
    which becomes the Go template's fixed text.
    """
    s, u, a = "\x00S\x00", "\x00U\x00", "\x00A\x00"

    def render(messages: list[tuple[str, str]], prompt: bool) -> str:
        chat = [{"role": role, "content": text} for role, text in messages]
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=prompt)

    full = render([("system", s), ("user", u)], True)
    before_system, rest = full.split(s, 1)
    between, after_user = rest.split(u, 1)
    after_answer = render([("user", u), ("assistant", a)], False).split(a, 1)[1]
    alone = render([("user", u)], True).split(u, 1)[0]
    if after_answer and between.startswith(after_answer):  # every turn closes alike (ChatML, Llama 3)
        system_close, user_open = after_answer, between[len(after_answer) :]
    else:  # the longest ending the two openings share is the user marker
        n = 0
        while n < min(len(between), len(alone)) and between[-1 - n] == alone[-1 - n]:
            n += 1
        system_close, user_open = between[: len(between) - n], between[len(between) - n :]
    template = (
        f"{{{{ if .System }}}}{before_system}{{{{ .System }}}}{system_close}{{{{ end }}}}"
        f"{{{{ if .Prompt }}}}{user_open}{{{{ .Prompt }}}}{after_user}{{{{ end }}}}{{{{ .Response }}}}{after_answer}"
    )
    default = alone[: len(alone) - len(user_open)] if alone.endswith(user_open) else ""
    if default.startswith(before_system) and default.endswith(system_close) and len(default) > len(before_system):
        return template, default[len(before_system) : len(default) - len(system_close)]
    return template, ""


def read_back(path: Path) -> dict[str, Any]:
    """What gguf.GGUFReader finds in the file: tensor count, types, shapes, and the tokenizer metadata."""
    import gguf

    reader = gguf.GGUFReader(path)

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            return len(f.data)
        value = f.parts[f.data[0]]
        return bytes(value).decode("utf-8") if f.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]

    types: dict[str, int] = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return {
        "tensors": len(reader.tensors),
        "tensor_types": types,
        "shapes": {t.name: [int(x) for x in t.shape] for t in reader.tensors},
        "architecture": field("general.architecture"),
        "tokenizer_model": field("tokenizer.ggml.model"),
        "tokenizer_pre": field("tokenizer.ggml.pre"),
        "tokens": field("tokenizer.ggml.tokens"),
        "merges": field("tokenizer.ggml.merges"),
        "bos_token_id": field("tokenizer.ggml.bos_token_id"),
        "eos_token_id": field("tokenizer.ggml.eos_token_id"),
        "chat_template": field("tokenizer.chat_template"),
    }


def _add_tensor(writer: Any, name: str, data: np.ndarray, qtype: Any) -> None:
    import gguf

    if data.ndim == 1:  # norms: F32, as llama.cpp keeps them
        writer.add_tensor(name, data.astype(np.float32))
        return
    if qtype == gguf.GGMLQuantizationType.Q4_0 and name in ("token_embd.weight", "output.weight"):
        qtype = gguf.GGMLQuantizationType.Q8_0
    if qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, data.astype(np.float16))
        return
    try:
        packed = gguf.quants.quantize(data, qtype)
    except gguf.QuantError:  # rows not a multiple of the block size: F16, as llama.cpp's converter falls back
        writer.add_tensor(name, data.astype(np.float16))
        return
    writer.add_tensor(name, packed, raw_shape=packed.shape, raw_dtype=qtype)


def _permute(weights: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """HF's rotary layout (halves) -> llama.cpp's (interleaved pairs), as convert_hf_to_gguf.py does."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _add_tokenizer(writer: Any, tokenizer: Any, config: Any) -> None:
    """Vocabulary, token types, merges, special ids and chat template, as llama.cpp reads a GPT-2 BPE."""
    import gguf

    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    added = {i: tok for i, tok in tokenizer.added_tokens_decoder.items()}
    tokens, types = [], []
    for i in range(config.vocab_size):
        if i not in by_id:  # the embedding has rows past the tokenizer (padding): unused, as llama.cpp names them
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:  # SpecialVocab reads the files save_pretrained writes
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "config.json").write_text(config.to_json_string())
        special = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=config.vocab_size)
    if tokenizer.chat_template:
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)


def _pre_tokenizer(tokenizer: Any) -> str:
    """llama.cpp's name for how text is split before BPE: SmolLM's (digits one by one), GPT-2's, or default."""
    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    kinds = [s.get("type") for s in steps]
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    return "default"
