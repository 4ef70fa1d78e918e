"""English and 简体中文: every key in both languages, same placeholders, and every key the code uses exists."""

import ast
import string
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webui.i18n import messages, normalize, request_language, t


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_no_key_is_missing_in_either_language():
    en, zh = messages("en"), messages("zh")
    assert sorted(set(en) - set(zh)) == [], "keys missing from webui/locales/zh.yaml"
    assert sorted(set(zh) - set(en)) == [], "keys missing from webui/locales/en.yaml"
    assert [k for k, v in {**en, **zh}.items() if not v.strip()] == [], "empty translations"


def test_placeholders_match_and_format():
    en, zh = messages("en"), messages("zh")
    assert {
        k: (_placeholders(en[k]), _placeholders(zh[k])) for k in en if _placeholders(en[k]) != _placeholders(zh[k])
    } == {}


def test_chinese_is_chinese():
    """A zh value equal to the English one is an untranslated fallback, except names and pure markup."""
    en, zh = messages("en"), messages("zh")
    same = [k for k in en if en[k] == zh[k] and any(c.isalpha() for c in en[k]) and k not in SAME_IN_BOTH]
    assert same == []


SAME_IN_BOTH = {"app.title", "runs.metric_eval_bleu4", "runs.metric_eval_rouge_l"}  # the product, metric names


def _keys_used_in_code() -> set[tuple[str, str]]:
    """Every literal key passed to L(...) or t(...) anywhere under webui/ and app.py."""
    used = set()
    for path in [*Path(ROOT, "webui").rglob("*.py"), Path(ROOT, "app.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("L", "t")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                used.add((str(path.relative_to(ROOT)), node.args[0].value))
    return used


def test_every_key_the_code_uses_exists():
    en = messages("en")
    used = _keys_used_in_code()
    assert len(used) > 20  # the scan finds the labels (it would pass vacuously if it found none)
    assert sorted(f"{where}: {key}" for where, key in used if key not in en) == []


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        ("zh", "en-US,en;q=0.9", "zh"),  # the selector wins over the browser
        ("en", "zh-CN,zh;q=0.9", "en"),
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "zh-TW", "zh"),
        (None, "fr-FR,en;q=0.5", "en"),
        (None, "", "en"),
        ("klingon", None, "en"),
    ],
)
def test_language_of_a_request(cookie, accept, expected):
    class Request:  # the two attributes of gr.Request that request_language reads
        cookies = {"tuneboard_lang": cookie} if cookie else {}
        headers = {"accept-language": accept} if accept else {}

    assert request_language(Request()) == expected


def test_messages_format_in_both_languages():
    assert normalize("zh_CN") == "zh" and normalize("EN-gb") == "en" and normalize(None) is None
    assert t("export.done", "en", fmt="merged", run_id=3, size_mb=1.25, where="x") == (
        "Exported **merged** of run 3: 1.2 MB in `x`."
    )
    assert "运行 3" in t("export.done", "zh", fmt="merged", run_id=3, size_mb=1.25, where="x")
    assert t("playground.send") == "Send"  # outside a request: English


def test_train_errors_name_the_setting_as_the_form_labels_it():
    from webui.tabs.train import with_labels

    assert with_labels("setting 'max_steps' must be 0 or more") == "setting 'max_steps' (Max steps) must be 0 or more"
    assert with_labels("setting 'no_such' is odd; dataset 'x'") == "setting 'no_such' is odd; dataset 'x'"
