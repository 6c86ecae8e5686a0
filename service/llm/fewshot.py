"""Few-shot examples: the labeled rows nearest to a message, by character bigrams.

Deliberately simple: no model, deterministic, good enough to show the model
a few labeled messages that look like this one.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in zip(chars, chars[1:])} or set(chars)


def nearest_examples(examples: list[dict[str, Any]], k: int = 3) -> Callable[[str], list[dict[str, Any]]]:
    """A picker returning the k rows (LABELING format, masked text) most like a message."""
    usable = [row for row in examples if row.get("text") and (row.get("gold") or {}).get("category")]
    grams = [_bigrams(row["text"]) for row in usable]

    def pick(text: str) -> list[dict[str, Any]]:
        if k <= 0 or not usable:
            return []
        query = _bigrams(text)
        scored = []
        for index, row_grams in enumerate(grams):
            union = len(query | row_grams) or 1
            scored.append((-len(query & row_grams) / union, index))
        return [usable[index] for _, index in sorted(scored)[:k]]

    return pick
