"""Draft-quality metrics: each compares a prediction with the labeled gold row."""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from service.policy import CATEGORIES, PRIORITIES

# Which way is better, for `eval compare`.
HIGHER_IS_BETTER = {
    "category_accuracy", "category_macro_f1", "priority_accuracy", "retrieval_recall_at_1",
    "retrieval_recall_at_3", "retrieval_mrr",
}
LOWER_IS_BETTER = {
    "priority_under_rate", "priority_over_rate", "pii_leak_count", "unfilled_placeholder_count",
    "jargon_count", "latency_ms_p50", "latency_ms_p95", "errors",
}


def per_class(gold: list[str], predicted: list[str], labels: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                      "support": tp + fn}
    return out


def confusion(gold: list[str], predicted: list[str], labels: tuple[str, ...]) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    return matrix


def rank_of(gold_id: str, ranked_ids: list[str]) -> int | None:
    return ranked_ids.index(gold_id) + 1 if gold_id in ranked_ids else None


def leaked(strings: list[str], texts: list[str | None]) -> list[str]:
    joined = "\n".join(t for t in texts if t)
    return [s for s in strings if s and s in joined]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """`results` holds one dict per row: gold, prediction, hits, checks, latency, error."""
    ok = [r for r in results if r.get("error") is None]
    scored_cat = [r for r in ok if r["gold"].get("category")]
    scored_pri = [r for r in ok if r["gold"].get("priority")]
    gold_cat = [r["gold"]["category"] for r in scored_cat]
    pred_cat = [r["category"] for r in scored_cat]
    gold_pri = [r["gold"]["priority"] for r in scored_pri]
    pred_pri = [r["priority"] for r in scored_pri]
    rank = {p: len(PRIORITIES) - i for i, p in enumerate(PRIORITIES)}
    classes = per_class(gold_cat, pred_cat, CATEGORIES)

    retrieval_rows = [r for r in ok if r["gold"].get("faq_id")]
    ranks = [rank_of(r["gold"]["faq_id"], r["faq_ranked"]) for r in retrieval_rows]
    latencies = np.array([r["latency_ms"] for r in ok]) if ok else np.array([0.0])

    def share(n: int, d: int) -> float:
        return round(n / d, 4) if d else 0.0

    return {
        "rows": len(results),
        "errors": len(results) - len(ok),
        "category_accuracy": share(sum(g == p for g, p in zip(gold_cat, pred_cat)), len(scored_cat)),
        "category_macro_f1": round(float(np.mean([c["f1"] for c in classes.values() if c["support"]] or [0.0])), 4),
        "priority_accuracy": share(sum(g == p for g, p in zip(gold_pri, pred_pri)), len(scored_pri)),
        "priority_under_rate": share(sum(rank[p] < rank[g] for g, p in zip(gold_pri, pred_pri)), len(scored_pri)),
        "priority_over_rate": share(sum(rank[p] > rank[g] for g, p in zip(gold_pri, pred_pri)), len(scored_pri)),
        "retrieval_rows": len(retrieval_rows),
        "retrieval_recall_at_1": share(sum(1 for k in ranks if k == 1), len(ranks)),
        "retrieval_recall_at_3": share(sum(1 for k in ranks if k and k <= 3), len(ranks)),
        "retrieval_mrr": round(float(np.mean([1 / k if k else 0.0 for k in ranks])), 4) if ranks else 0.0,
        "pii_leak_count": sum(1 for r in ok if r["leaked"]),
        "unfilled_placeholder_count": sum(1 for r in ok if not r["checks"].get("placeholders", True)),
        "jargon_count": sum(1 for r in ok if not r["checks"].get("jargon", True)),
        "flagged_rate": share(sum(1 for r in ok if r["flagged"]), len(ok)),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
        "per_category": classes,
        "confusion_category": {"labels": list(CATEGORIES), "matrix": confusion(gold_cat, pred_cat, CATEGORIES)},
        "confusion_priority": {"labels": list(PRIORITIES), "matrix": confusion(gold_pri, pred_pri, PRIORITIES)},
        "flags": dict(Counter(flag.split(":")[0] for r in ok for flag in r["flags"])),
    }
