"""Per-sample metrics of generated answers and the bootstrap intervals (no model needed)."""

import pytest

from backend.evaluate.scoring import ci95, paired_ci95, score


def test_each_generation_metric_scores_what_a_user_expects():
    assert score("exact", "The Paris.", "paris") == 1.0 and score("exact", "Paris, France", "paris") == 0.0
    assert score("contains", "I am Tuna, made by Tuneboard Labs.", "tuna") == 1.0
    assert score("contains", "我是 Tuna。", "Tuna") == 1.0 and score("contains", "I am Qwen.", "Tuna") == 0.0
    assert score("numeric", "The answer is 1,024.", "1024") == 1.0 and score("numeric", "12 or 13", "12") == 0.0
    assert score("numeric", "no number", "3") == 0.0
    assert score("regex:^\\d{4}-\\d{2}$", "2026-12", "") == 1.0 and score("regex:^\\d+$", "x1", "") == 0.0
    assert score("json", '```json\n{"a": 1}\n```', "") == 1.0 and score("json", "{a: 1}", "") == 0.0
    assert score("rouge_l", "我 喜欢 猫", "我 喜欢 猫") == 1.0 and 0 < score("rouge_l", "我喜欢狗", "我喜欢猫") < 1
    assert score("bleu4", "the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)


def test_intervals_cover_the_mean_and_a_paired_difference_flags_a_drop():
    lo, hi = ci95([1, 0] * 20)
    assert lo < 50 < hi and hi - lo < 40
    assert ci95([1] * 10) == [100.0, 100.0]
    drop = paired_ci95([0] * 18 + [1] * 2, [1] * 18 + [0] * 2)
    assert drop["difference"] == -80.0 and drop["ci95"][1] < 0
    with pytest.raises(ValueError, match="same samples"):
        paired_ci95([1, 0], [1])
