"""Few-shot examples: the labeled rows (knowledge/examples.jsonl) nearest to a message.

`embedding_examples` is what the runtime wires: the rows' masked texts are
embedded once (the same vectors the offline classifier votes with) and a
message's nearest rows are found by cosine similarity with its query vector.
`nearest_examples` (character bigrams, no model) is for callers without an
embedder. Either way only masked text and the gold labels leave this module.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Picker = Callable[[str], list[dict[str, Any]]]


def _labeled(row: dict[str, Any]) -> bool:
    return bool(row.get("text") and (row.get("gold") or {}).get("category"))


def masked_row(row: dict[str, Any], masked_text: str) -> dict[str, Any]:
    """What a prompt may show of a labeled row: masked text, channel, tier and gold labels."""
    gold = row.get("gold") or {}
    return {"id": row.get("id"), "channel": row.get("channel", ""), "text": masked_text,
            "customer": {"tier": (row.get("customer") or {}).get("tier", "regular")},
            "gold": {"category": gold.get("category"), "priority": gold.get("priority")}}


def embedding_examples(rows: list[dict[str, Any]], masked_texts: list[str], vectors: np.ndarray,
                       embed_query: Callable[[str], np.ndarray], k: int = 3) -> Picker:
    """A picker returning the k labeled rows whose masked text is nearest a (masked) message.

    `masked_texts[i]` and `vectors[i]` belong to `rows[i]`; `embed_query` embeds the
    message (the retriever's, so the vector computed for retrieval is reused).
    """
    if len(rows) != len(masked_texts) or len(rows) != len(vectors):
        raise ValueError("one masked text and one vector per row are required")
    keep = [i for i, row in enumerate(rows) if _labeled(row)]
    shown = [masked_row(rows[i], masked_texts[i]) for i in keep]
    matrix = np.asarray(vectors, dtype=np.float32)[keep] if keep else np.zeros((0, 1), dtype=np.float32)

    def pick(text: str) -> list[dict[str, Any]]:
        if k <= 0 or not shown:
            return []
        sims = matrix @ np.asarray(embed_query(text), dtype=np.float32).reshape(-1)
        order = np.argsort(-sims, kind="stable")[:k]
        return [shown[i] for i in order]

    return pick


def _bigrams(text: str) -> set[str]:
    chars = [c for c in text if not c.isspace()]
    return {a + b for a, b in zip(chars, chars[1:])} or set(chars)


def nearest_examples(examples: list[dict[str, Any]], k: int = 3) -> Picker:
    """A picker by character-bigram overlap, for rows whose text is already masked."""
    usable = [row for row in examples if _labeled(row)]
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
