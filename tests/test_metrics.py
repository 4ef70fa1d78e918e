"""Metrics against values computed by hand, including Chinese text segmented into words."""

import pytest

from backend.metrics import bleu4, classification_metrics, rouge_l, tokenize


def test_classification_metrics_match_hand_counts():
    # true: a b b c, predicted: a b a c -> one b taken for an a
    m = classification_metrics([0, 1, 1, 2], [0, 1, 0, 2], ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    # precision a=1/2 b=1 c=1, recall a=1 b=1/2 c=1, F1 a=2/3 b=2/3 c=1
    assert m["precision_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["per_class"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[1, 0, 0], [1, 1, 0], [0, 0, 1]]}


def test_a_class_absent_from_the_evaluation_does_not_drag_the_macro_average():
    m = classification_metrics([0, 0, 1], [0, 0, 1], ["a", "b", "never-seen"])
    assert m["f1_macro"] == 1.0 and m["per_class"]["never-seen"]["support"] == 0
    assert m["confusion_matrix"]["matrix"][2] == [0, 0, 0]


def test_classification_metrics_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        classification_metrics([0, 1], [0], ["a", "b"])


def test_bleu4_english_by_hand():
    # the cat sat on the mat / the cat sat on a mat: n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths
    assert bleu4(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(100 * (1 / 12) ** 0.25)
    assert bleu4(["same words here and there"], ["same words here and there"]) == pytest.approx(100)
    # half as long as the reference: brevity penalty exp(1 - 8/4)
    short = bleu4(["a b c d"], ["a b c d e f g h"])
    assert short == pytest.approx(100 * 2.718281828 ** (1 - 2), rel=1e-6)


def test_chinese_is_segmented_into_words():
    assert tokenize("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert tokenize("我是Tuna，由Tuneboard Labs开发。") == [
        "我",
        "是",
        "Tuna",
        "，",
        "由",
        "Tuneboard",
        "Labs",
        "开发",
        "。",
    ]
    assert tokenize("Hello, world!") == ["Hello", ",", "world", "!"]


def test_bleu4_chinese_by_hand():
    # words: 今天天气 很 好 ， 我们 去 公园 散步 (8) vs 今天天气 不错 ， 我们 去 公园 跑步 (7)
    # matches: 1-grams 5/8, 2-grams 3/7, 3-grams 2/6, 4-grams 1/5; longer than the reference: no penalty
    got = bleu4(["今天天气很好，我们去公园散步"], ["今天天气不错，我们去公园跑步"])
    assert got == pytest.approx(100 * (5 / 8 * 3 / 7 * 2 / 6 * 1 / 5) ** 0.25)


def test_rouge_l_by_hand():
    # LCS of 我/爱/北京/天安门 and 我/爱/天安门 is 3 words: P 3/4, R 3/3, F1 6/7 (per character it would be 5/6)
    assert rouge_l(["我爱北京天安门"], ["我爱天安门"]) == pytest.approx(100 * 6 / 7)
    # LCS "the cat on mat" = 4 of 6 and 5 words: F1 = 2*4/(6+5); case does not matter
    assert rouge_l(["The cat sat on the mat"], ["the cat is on mat"]) == pytest.approx(100 * 8 / 11)
    # the mean over pairs
    assert rouge_l(["a b", "x"], ["a b", "y"]) == pytest.approx(50)


def test_generation_metrics_refuse_mismatched_lists():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        bleu4(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        rouge_l([], [])
