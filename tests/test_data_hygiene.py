"""Eval data is independent of the classifier's examples: no exact or near duplicates."""
from __future__ import annotations

import re

from service.config import PROJECT_ROOT
from service.kb import read_jsonl

EVAL_FILES = sorted((PROJECT_ROOT / "eval" / "data").glob("*.jsonl"))
EXAMPLES = PROJECT_ROOT / "knowledge" / "examples.jsonl"


def _shingles(text: str, n: int = 3) -> set[str]:
    normal = re.sub(r"[\s\W_]+", "", text.lower())
    return {normal[i:i + n] for i in range(max(1, len(normal) - n + 1))}


def near_duplicates(left: list[str], right: list[str], threshold: float = 0.6) -> list[tuple[str, str, float]]:
    # Texts with almost no letters (emoji only) carry nothing to compare.
    right_sets = [(text, _shingles(text)) for text in right if len(_shingles(text)) >= 4]
    found = []
    for text in left:
        a = _shingles(text)
        if len(a) < 4:
            continue
        for other, b in right_sets:
            score = len(a & b) / len(a | b) if a | b else 1.0
            if score >= threshold:
                found.append((text[:40], other[:40], round(score, 2)))
    return found


def test_the_check_catches_a_light_rewrite():
    original = "我的订单DD20240315001三天了还没发货，麻烦尽快处理"
    assert near_duplicates([original.replace("麻烦", "请")], [original])
    assert not near_duplicates(["空调遥控器丢了能单独买吗"], [original])


def test_no_eval_row_is_a_near_duplicate_of_an_example():
    examples = [row["text"] for row in read_jsonl(EXAMPLES)]
    assert EVAL_FILES
    for path in EVAL_FILES:
        rows = [row["text"] for row in read_jsonl(path)]
        assert near_duplicates(rows, examples) == [], path.name

