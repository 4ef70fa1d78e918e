"""A local model as judge: pairwise (A vs B, asked in both orders) or against a rubric (a 1-5 score or pass/fail).

The verdict is a constrained choice, not parsed free text: the judge's log-likelihood of each option
right after "Verdict:" in its own chat turn (pairwise "A. <answer A>" / "B. <answer B>", a rubric's
" 1".." 5" or " PASS" / " FAIL"), so every question gets a verdict even from a small model; then it
writes a one-line reason after its verdict.
Pairwise asks twice with the answers swapped: a verdict stands only when both orders name the same
answer, otherwise it is a tie (position bias cancelled, not averaged in).

    judge = Judge(model, tokenizer, mode="pairwise")
    judge.pairwise("Capital of France?", "Paris.", "Bananas.", reference="Paris")
    # {"verdict": "A", "orders": ["A", "A"], "reason": "..."}: A better in both orders
    judge.rubric("Capital of France?", "Paris.", rubric="Names the right city")  # mode rubric or pass
    # {"verdict": 5, "reason": "..."}
    check_human(path, "pairwise")   # human-labelled rows, refused with file/row/field when malformed
    agreement(judge_labels, human_labels)  # {"percent", "n", "kappa"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("pairwise", "rubric", "pass")
DEFAULT_RUBRIC = "The answer is correct, answers the question that was asked, and is clear."
REASON_TOKENS = 32  # a one-line reason (pairwise: from the first order); the verdict costs one forward pass
SAID_CHARS = 300  # pairwise: how much of an answer the judge repeats to back it
SYSTEM = "You are a strict and fair judge of answers written by AI assistants."
OPTIONS = {"pairwise": ["A", "B"], "rubric": ["1", "2", "3", "4", "5"], "pass": ["PASS", "FAIL"]}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"setting 'judge_mode': {mode!r} is not one of {', '.join(MODES)}")
    return mode


def sample_score(mode: str, verdict: Any) -> float:
    """A verdict as a 0-1 score for the judged model: pairwise B (the later model) 1, tie 0.5, A 0;
    rubric (score - 1) / 4; pass 1, fail 0."""
    if mode == "pairwise":
        return {"B": 1.0, "tie": 0.5, "A": 0.0}[verdict]
    if mode == "rubric":
        return (int(verdict) - 1) / 4
    return float(verdict == "PASS")


@dataclass
class Judge:
    model: Any
    tokenizer: Any
    mode: str = "pairwise"
    rubric_text: str = DEFAULT_RUBRIC

    def pairwise(self, prompt: str, first: str, second: str, reference: str = "") -> dict[str, Any]:
        """Which answer is better, asked with `first` as A and then with it as B; a tie when the orders disagree."""
        one = self._ask(_pairwise_text(prompt, first, second, reference), _said(first, second))
        two = self._ask(_pairwise_text(prompt, second, first, reference), _said(second, first), reason=False)
        swapped = {"A": "B", "B": "A"}.get(two["verdict"])  # in the second order A is `second`
        verdict = one["verdict"] if one["verdict"] is not None and one["verdict"] == swapped else "tie"
        return {
            "verdict": verdict,
            "orders": [one["verdict"], swapped],
            "reason": one["reason"] if verdict != "tie" else f"the two orders disagree; first order: {one['reason']}",
        }

    def rubric(self, prompt: str, answer: str, reference: str = "") -> dict[str, Any]:
        """The answer graded against the rubric: a score 1-5 (mode rubric) or PASS / FAIL (mode pass)."""
        asked = self._ask(_rubric_text(self.mode, self.rubric_text, prompt, answer, reference))
        verdict = int(asked["verdict"]) if self.mode == "rubric" else asked["verdict"]
        return {"verdict": verdict, "reason": asked["reason"], "probabilities": asked["probabilities"]}

    def _ask(self, text: str, options: list[str] | None = None, reason: bool = True) -> dict[str, Any]:
        """The option the judge finds likeliest after "Verdict:" (mean log-probability per token, so a long
        option is not penalised for its length); `options` are what it may say, OPTIONS[mode] by default."""
        import torch

        labels = OPTIONS[self.mode]
        said = options or labels
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        head = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + "Verdict:"
        head_ids = self.tokenizer(head, add_special_tokens=False)["input_ids"]
        choices = [self.tokenizer(" " + o, add_special_tokens=False)["input_ids"] for o in said]
        device = next(self.model.parameters()).device
        width = len(head_ids) + max(map(len, choices))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([head_ids + c + [pad] * (width - len(head_ids) - len(c)) for c in choices], device=device)
        mask = torch.tensor([[1] * (len(head_ids) + len(c)) + [0] * (width - len(head_ids) - len(c)) for c in choices])
        self.model.eval()
        with torch.no_grad():
            logprobs = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask.to(device)).logits.float(), -1)
        scores = []
        for row, c in enumerate(choices):  # the option's tokens, each predicted by the position before it
            positions = range(len(head_ids) - 1, len(head_ids) - 1 + len(c))
            scores.append(sum(float(logprobs[row, p, tok]) for p, tok in zip(positions, c, strict=True)) / len(c))
        best = max(range(len(said)), key=scores.__getitem__)
        probabilities = torch.softmax(torch.tensor(scores), 0).tolist()
        return {
            "verdict": labels[best],
            "reason": self._reason(head + " " + said[best] + "\nReason:") if reason else "",
            "probabilities": {o: round(p, 4) for o, p in zip(labels, probabilities, strict=True)},
        }

    def _reason(self, text: str) -> str:
        import torch

        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids.to(next(self.model.parameters()).device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=REASON_TOKENS,
                do_sample=False,
                pad_token_id=pad,
            )
        reason = self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
        return reason.splitlines()[0].strip() if reason else ""


def _said(a: str, b: str) -> list[str]:
    """Pairwise, the judge says which answer it backs by repeating it: its letter and (the start of) its text,
    so the verdict rests on the answers' content and not only on a letter (small judges favour one letter)."""
    return [f"A. {a[:SAID_CHARS]}", f"B. {b[:SAID_CHARS]}"]


def _reference(reference: str) -> str:
    return f"Reference answer: {reference}\n\n" if reference.strip() else ""


def _pairwise_text(prompt: str, a: str, b: str, reference: str) -> str:
    return (
        f"Question: {prompt}\n\n{_reference(reference)}Answer A: {a}\n\nAnswer B: {b}\n\n"
        "Which answer is better: more correct, more helpful, and answering the question asked? "
        "Reply with 'Verdict: ' and the better answer's letter and text, then one line starting 'Reason:'."
    )


def _rubric_text(mode: str, rubric: str, prompt: str, answer: str, reference: str) -> str:
    scale = (
        "Score it from 1 (does not meet the rubric at all) to 5 (fully meets it). Reply with 'Verdict: ' and the score"
        if mode == "rubric"
        else "Does it meet the rubric? Reply with 'Verdict: PASS' or 'Verdict: FAIL'"
    )
    return (
        f"Rubric: {rubric}\n\nQuestion: {prompt}\n\n{_reference(reference)}Answer: {answer}\n\n"
        f"{scale}, then one line starting 'Reason:'."
    )


# -- human labels: how far to trust the judge ------------------------------------------------------------


def check_human(path: str | Path, mode: str) -> list[dict[str, Any]]:
    """Human-labelled rows (JSON Lines or a JSON list), checked row by row. Pairwise rows: prompt, answer_a,
    answer_b, human (A, B or tie); rubric rows: prompt, answer, human (1-5); pass rows: prompt, answer,
    human (pass or fail). `reference` is optional in all."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"human labels '{path}': no such file; give a JSON Lines file of labelled samples")
    text = file.read_text(encoding="utf-8-sig")
    try:
        lines = [x for x in text.splitlines() if x.strip()]
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in lines]
    except json.JSONDecodeError as e:
        raise ValueError(f"human labels {file}: not valid JSON ({e.msg}); one object a line") from e
    if not rows:
        raise ValueError(f"human labels {file}: no rows; add at least one labelled sample")
    needed = ("prompt", "answer_a", "answer_b") if mode == "pairwise" else ("prompt", "answer")
    out = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"human labels {file}, row {i}: not an object with named fields")
        for f in needed:
            if not isinstance(row.get(f), str) or not row[f].strip():
                raise ValueError(f"human labels {file}, row {i}: field '{f}' is missing or empty ({mode} judging)")
        out.append({**{f: row[f] for f in needed}, "reference": str(row.get("reference") or ""),
                    "human": _human_label(file, i, mode, row.get("human"))})  # fmt: skip
    return out


def _human_label(file: Path, i: int, mode: str, value: Any) -> Any:
    text = str(value if value is not None else "").strip()
    if mode == "pairwise" and text.upper() in ("A", "B", "TIE"):
        return text.upper() if text.upper() != "TIE" else "tie"
    if mode == "rubric" and text in OPTIONS["rubric"]:
        return int(text)
    if mode == "pass" and text.upper() in OPTIONS["pass"]:
        return text.upper()
    allowed = {"pairwise": "A, B or tie", "rubric": "a score 1-5", "pass": "pass or fail"}[mode]
    raise ValueError(f"human labels {file}, row {i}: field 'human' is {value!r}; write {allowed}")


def agreement(judged: list[Any], human: list[Any]) -> dict[str, Any]:
    """How often the judge gave the human's verdict (percent of n) and Cohen's kappa (agreement beyond
    chance; scikit-learn's, None when it is not installed or every label is the same)."""
    n = len(human)
    same = sum(a == b for a, b in zip(judged, human, strict=True))
    kappa = None
    try:
        from sklearn.metrics import cohen_kappa_score

        if len({*map(str, judged), *map(str, human)}) > 1:
            value = float(cohen_kappa_score([str(x) for x in human], [str(x) for x in judged]))
            kappa = None if value != value else round(value, 3)  # NaN when one side has a single label
    except ImportError:
        pass
    return {"percent": round(100 * same / n, 1) if n else 0.0, "n": n, "agreed": same, "kappa": kappa}
