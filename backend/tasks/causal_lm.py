"""Causal LMs: chat SFT (loss on assistant turns) and continued pre-training (rows with `text`).

The worker calls `build(cfg, model_dir, train_rows, eval_rows, dtype)` and hands the result to the
Trainer. A row is either `{"messages": [...]}` (chat: system/user/assistant turns; tool calls and
tool results become text) or `{"text": "..."}` (pre-training: loss on every token).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from backend.config import ADAPTERS, RunConfig
from backend.tasks.base import Built

log = logging.getLogger(__name__)

IGNORE = -100  # label value the loss skips

# For tokenizers without a chat template (base models): `chat_template` picks one of these.
TEMPLATES = {
    "chatml": (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n'"
        " + m['content'] + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    "alpaca": (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\\n\\n' }}"
        "{% elif m['role'] == 'assistant' %}{{ '### Response:\\n' + m['content'] + eos_token + '\\n\\n' }}"
        "{% else %}{{ '### Instruction:\\n' + m['content'] + '\\n\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
    ),
}


def as_text_turns(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Tool calls and tool results as plain text turns any chat template can render.

    An assistant turn's `tool_calls` become `<tool_call>{json}</tool_call>` lines after its content
    (learned like any answer); a `tool` turn becomes a user turn wrapped in `<tool_response>`.
    """
    import json

    out = []
    for m in messages:
        content = m.get("content") or ""
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [c.get("function", c) for c in m["tool_calls"]]
            content = "\n".join(
                [content, *(f"<tool_call>{json.dumps(c, ensure_ascii=False)}</tool_call>" for c in calls)]
            )
            out.append({"role": "assistant", "content": content.strip()})
        elif m["role"] in ("tool", "function", "observation"):
            out.append({"role": "user", "content": f"<tool_response>{content}</tool_response>"})
        else:
            out.append({"role": m["role"], "content": content})
    return out


def tokenize(
    messages: list[dict[str, str]], tokenizer: Any, cutoff: int, train_on_prompt: bool
) -> dict[str, list[int]]:
    """Token ids and labels for one conversation; labels are IGNORE outside assistant turns.

    Each assistant turn's span is found by rendering the conversation up to the turn (with the
    generation prompt) and up to its end, so any chat template works without knowing its markers.
    """
    ids = _render(tokenizer, messages, add_generation_prompt=False)
    labels = list(ids) if train_on_prompt else [IGNORE] * len(ids)
    if not train_on_prompt:
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            start = len(_render(tokenizer, messages[:i], add_generation_prompt=True))
            end = len(_render(tokenizer, messages[: i + 1], add_generation_prompt=False))
            labels[start:end] = ids[start:end]
    return {"input_ids": ids[:cutoff], "labels": labels[:cutoff]}


def tokenize_text(text: str, tokenizer: Any, cutoff: int) -> dict[str, list[int]]:
    """Continued pre-training: every token of the text (and a closing EOS) is learned."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": ids[:cutoff], "labels": ids[:cutoff]}


def _encode_row(row: dict[str, Any], tokenizer: Any, cfg: RunConfig) -> dict[str, list[int]]:
    if row.get("messages"):
        return tokenize(as_text_turns(row["messages"]), tokenizer, cfg.cutoff_len, cfg.train_on_prompt)
    if row.get("text"):
        return tokenize_text(row["text"], tokenizer, cfg.cutoff_len)
    raise ValueError("a row has neither 'messages' nor 'text'; import the dataset again as chat or plain text")


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"] if isinstance(out, dict) or hasattr(out, "keys") else out)


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    import datasets
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    chat = any(r.get("messages") for r in train_rows[:1])
    tokenizer = load_tokenizer(cfg, model_dir, chat=chat)

    def encode(rows: list[dict[str, Any]]) -> datasets.Dataset:
        data = datasets.Dataset.from_list(rows)
        data = data.map(lambda r: _encode_row(r, tokenizer, cfg), remove_columns=data.column_names, desc="tokenizing")
        return data.filter(lambda r: any(x != IGNORE for x in r["labels"]), desc="dropping rows cut before the answer")

    if not eval_rows and cfg.val_ratio > 0 and len(train_rows) >= 10:  # hold out rows before encoding
        order = random.Random(cfg.seed).sample(range(len(train_rows)), len(train_rows))
        cut = max(1, round(len(train_rows) * cfg.val_ratio))
        eval_rows, train_rows = [train_rows[i] for i in order[:cut]], [train_rows[i] for i in order[cut:]]
    train, evalset = encode(train_rows), encode(eval_rows) if eval_rows else None
    if len(train) == 0:
        raise ValueError(f"every row is longer than cutoff_len={cfg.cutoff_len} before its answer; raise cutoff_len")
    model = load_model(cfg, model_dir, dtype)
    groups = layer_groups(model)
    if cfg.method in ADAPTERS:
        from backend.training.methods import add_lora

        model = add_lora(model, cfg, task_type="CAUSAL_LM")

    # Packing: the batch becomes one row with restarting position_ids; transformers turns that into a
    # block-diagonal mask, so no token attends across examples. It pays off with flash attention on
    # GPU; on CPU the one long masked row costs more than length-grouped padded rows (bench/).
    collator = (
        DataCollatorWithFlattening(return_position_ids=True)
        if cfg.packing
        else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE, pad_to_multiple_of=8)
    )
    tokens = sum(len(x) for x in train["input_ids"])
    built = Built(model, tokenizer, train, evalset, collator, tokens, sft_trainer(), layer_groups=groups)
    chat_held_out = [r for r in eval_rows if r.get("messages")]

    def final_metrics(trainer: Any) -> dict[str, Any]:
        from backend.tasks import selfcheck

        model = trainer.model
        with lora_merged(model):
            out = answer_scores(model, tokenizer, chat_held_out[: cfg.eval_samples]) if cfg.eval_samples else {}
            asked = selfcheck.sample(train_rows, cfg.seed)  # did it pick the data up? its own prompts, greedy
            _, answers, targets = generate_answers(model, tokenizer, asked, selfcheck.MAX_NEW_TOKENS, len(asked))
        return {**out, **selfcheck.train_check(answers, targets)}

    if chat:
        built.final_metrics = final_metrics
    return built


def load_tokenizer(cfg: RunConfig, model_dir: Path, chat: bool = True) -> Any:
    """The model's tokenizer, with a pad token and (for chat data) a chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.chat_template != "auto":
        tokenizer.chat_template = TEMPLATES[cfg.chat_template]
    elif chat and not tokenizer.chat_template:
        raise ValueError(
            f"model '{cfg.model}' has no chat template; set chat_template to one of {', '.join(TEMPLATES)} "
            "(chatml suits most base models)"
        )
    return tokenizer


def load_model(cfg: RunConfig, model_dir: Path, dtype: torch.dtype) -> Any:
    """The model, with base weights in the compute dtype for adapters (QLoRA: quantized on the GPU).

    LoRA trains fp32 adapters on top (peft upcasts them), and casting the frozen weights once here
    beats autocast re-casting them every step. Full, freeze and gradual keep fp32 master weights.
    """
    from transformers import AutoModelForCausalLM

    extra: dict[str, Any] = {}
    if cfg.method == "qlora":
        from backend.training.methods import quantization_config

        extra = {"quantization_config": quantization_config(cfg, dtype), "device_map": {"": _local_rank()}}
    load_dtype = dtype if cfg.method in ADAPTERS else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=load_dtype, attn_implementation="sdpa", trust_remote_code=cfg.trust_remote_code, **extra
    )
    model.config.use_cache = False
    return model


def layer_groups(model: Any) -> list[Any]:
    """Bottom-to-top groups: the input embeddings, then each decoder layer (the longest ModuleList)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    layers = max(lists, key=len) if lists else []
    return [model.get_input_embeddings(), *layers]


def skeleton(cfg: RunConfig, model_dir: Path) -> tuple[Any, list[Any]]:
    """The model without weights (meta device), for checks before a run is queued."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    return model, layer_groups(model)


def answer_scores(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_new_tokens: int = 128, batch_size: int = 8
) -> dict[str, float]:
    """Greedy answers to held-out prompts (the conversation up to its last assistant turn), scored
    against the reference answers with BLEU-4 and ROUGE-L (0-100; Chinese segmented into words)."""
    from backend.metrics import bleu4, rouge_l

    _, predictions, references = generate_answers(model, tokenizer, rows, max_new_tokens, batch_size)
    if not predictions:
        return {}
    log.info("scored %d generated answers; first: %r (reference %r)", len(predictions), predictions[0], references[0])
    return {
        "eval_bleu4": round(bleu4(predictions, references), 2),
        "eval_rouge_l": round(rouge_l(predictions, references), 2),
    }


@contextlib.contextmanager
def lora_merged(model: Any) -> Iterator[None]:
    """Greedy answers with the LoRA weights folded into the base layers, unfolded after.

    Decoding reads every weight once per token; an unmerged LoRA layer adds two more small matmuls and a
    dropout per projection. Folded, the answers after training come 1.5-1.8x sooner on CPU (fp32: the
    same answers; bf16: the fold rounds, as a merged export does). A quantized base (QLoRA) is not
    folded: its 4-bit weights would round the adapter away."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else None
    fold = base is not None and hasattr(model, "merge_adapter") and not getattr(base, "is_quantized", False)
    if fold:
        try:
            model.merge_adapter()
        except Exception:  # a layer type peft cannot fold: answer unfolded, slower but the same
            log.warning("the adapter could not be folded for the answers after training", exc_info=True)
            model.unmerge_adapter()  # the layers folded before the failure
            fold = False
    try:
        yield
    finally:
        if fold:
            model.unmerge_adapter()


def generate_answers(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_new_tokens: int = 128, batch_size: int = 8
) -> tuple[list[str], list[str], list[str]]:
    """(last questions, greedy answers, reference answers) for the rows that have an assistant turn;
    also what the playground's batch prediction writes out and scores."""
    prompts, questions, references = [], [], []
    for row in rows:
        turns = as_text_turns(row["messages"])
        last = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=None)
        if last is not None:
            prompts.append(_render(tokenizer, turns[:last], add_generation_prompt=True))
            questions.append(next((m["content"] for m in reversed(turns[:last]) if m["role"] == "user"), ""))
            references.append(turns[last]["content"])
    if not prompts:
        return [], [], []
    model.eval()
    device = next(model.parameters()).device
    predictions = []
    for start in range(0, len(prompts), batch_size):  # left-padded batches, KV cache on
        chunk = prompts[start : start + batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        predictions += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return questions, [p.strip() for p in predictions], references


def _local_rank() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", "0"))


def sft_trainer() -> type:
    """A Trainer whose loss asks the model for logits only at positions that have a label.

    The LM head (vocabulary x hidden), its float32 copy and log-softmax cost about a quarter of a
    small model's step; on chat data most positions are system or prompt tokens with no label.
    `logits_to_keep` takes the positions (the union over the batch's rows) where some row has a
    label; the loss is the same as the model's own, to float rounding.
    """
    import inspect

    import torch.nn.functional as F
    from transformers import Trainer

    class SFTTrainer(Trainer):
        def log(self, logs, *args, **kwargs):
            if "eval_loss" in logs:  # perplexity: exp of the mean per-token loss on the validation set
                logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
            super().log(logs, *args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.get("labels")
            if labels is None or return_outputs or not _takes_logits_to_keep(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            targets = labels[:, 1:]  # position i predicts token i + 1
            keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
            rest = {k: v for k, v in inputs.items() if k != "labels"}
            with _adapters_cast_free(model, getattr(self, "args", None)):
                logits = model(**rest, logits_to_keep=keep).logits
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(), targets[:, keep].flatten(), ignore_index=IGNORE, reduction="sum"
            )
            # num_items_in_batch counts labelled tokens over all accumulated micro-batches.
            count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum().clamp(min=1)
            return loss / count

    def _adapters_cast_free(model, args):
        """Under bf16/fp16 autocast, peft's cast of each LoRA input up to the fp32 adapter's dtype is undone
        by autocast at once (the adapter's matmul runs in bf16 anyway): skip it, 2-4% of a CPU step
        (docs/benchmarks.md). Plain LoRA only, and not with gradient checkpointing, whose recomputed forward
        (casts on again) must save the same dtypes as this one."""
        from contextlib import nullcontext

        from peft.helpers import disable_input_dtype_casting

        inner = getattr(model, "module", model)  # under torchrun: the DDP wrapper's model
        peft_config = getattr(inner, "peft_config", {}).get("default")
        plain_lora = peft_config is not None and not getattr(peft_config, "use_dora", False)
        mixed = args is not None and (args.bf16 or args.fp16) and not args.gradient_checkpointing
        return disable_input_dtype_casting(inner) if plain_lora and mixed else nullcontext()

    def _takes_logits_to_keep(model) -> bool:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    return SFTTrainer
