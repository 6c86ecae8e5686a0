"""Score FAQ retrieval on labeled queries (LABELING.md rows with gold.faq_id)."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from service.jsonl import JsonlError, json_objects
from service.retrieval.cache import EmbeddingCache
from service.retrieval.embedders import Embedder
from service.retrieval.retriever import KnowledgeRetriever, query_for_embedding

RANK_DEPTH = 10  # MRR counts a gold entry found within this many hits


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        try:
            return [row for _, row in json_objects(handle)]
        except JsonlError as exc:
            raise ValueError(f"{path}:{exc.line}: {exc.problem}") from exc


def load_faq(path: str | Path) -> list[dict[str, Any]]:
    """FAQ entries (knowledge/faq.jsonl format) as plain dicts."""
    entries = _read_jsonl(path)
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        missing = [name for name in ("id", "question", "answer") if not entry.get(name)]
        if missing:
            raise ValueError(f"{path}: entry {number} lacks {', '.join(missing)}")
        if entry["id"] in seen:
            raise ValueError(f"{path}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        entry.setdefault("category", "")
        entry.setdefault("tags", [])
        entry.setdefault("similar_questions", [])
    return entries


def load_queries(path: str | Path) -> list[dict[str, Any]]:
    """Labeled rows; `gold.faq_id` null marks a message the knowledge base does not answer."""
    rows = _read_jsonl(path)
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise ValueError(f"{path}: row {number} has no text")
        gold = row.get("gold")
        if not isinstance(gold, dict) or "faq_id" not in gold:
            raise ValueError(f"{path}: row {number} has no gold.faq_id (use null for no answer)")
    return rows


def evaluate_retrieval(faq: list[dict], queries: list[dict], embedder: Embedder, mode: str,
                       progress: bool = False, *, cache_dir: Path | None = None,
                       retriever_options: dict[str, Any] | None = None,
                       details: bool = False,
                       category_prior: Callable[[str, np.ndarray], Mapping[str, float]] | None = None
                       ) -> dict[str, Any]:
    """Recall@1/@3, MRR@10 and no-answer accuracy, with the FAQ indexed in memory for this run.

    `cache_dir` keeps passage and query embeddings between runs (e.g. to compare modes).
    `category_prior(text, vector)` gives the classifier's category probabilities, used in
    hybrid mode as the service uses them (`KnowledgeRetriever.search`)."""
    started = time.perf_counter()
    retriever = KnowledgeRetriever(embedder, None, mode=mode, embedding_cache_dir=cache_dir,
                                   **(retriever_options or {}))
    retriever.build(faq, [], progress=progress)

    texts = [query_for_embedding(row["text"]) for row in queries]  # what `search` embeds
    vectors = None
    if mode != "lexical" and texts:
        cache = EmbeddingCache(Path(cache_dir) if cache_dir else None, embedder.name, "query", embedder.dim)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(set(texts)), desc="embedding queries", unit="text")
        try:
            vectors = cache.get_or_embed(texts, embedder.embed_queries, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        cache.flush()

    # The prior only orders entries by their category: without categories it would change nothing.
    use_prior = (category_prior is not None and mode == "hybrid" and vectors is not None
                 and any(entry.get("category") for entry in faq))
    known = {entry["id"] for entry in faq}
    ranks: list[int | None] = []
    no_answer: list[bool] = []
    rows_out = []
    for i, row in enumerate(queries):
        vector = vectors[i] if vectors is not None else None
        prior = category_prior(row["text"], vector) if use_prior else None
        hits = retriever.search_vector("faq", row["text"], vector, k=RANK_DEPTH, category_prior=prior)
        gold = row["gold"].get("faq_id")
        top = hits[0].score if hits else float("-inf")
        if gold is None:
            no_answer.append(top < retriever.no_answer_threshold)
            rank = None
        else:
            rank = next((position for position, hit in enumerate(hits, 1) if hit.id == gold), None)
            ranks.append(rank)
        if details:
            rows_out.append({"id": row.get("id"), "gold": gold, "rank": rank, "top": [(h.id, round(h.score, 4))
                                                                                       for h in hits[:3]]})

    def share(count: int, total: int) -> float:
        return round(count / total, 4) if total else 0.0

    result: dict[str, Any] = {
        "recall_at_1": share(sum(1 for r in ranks if r == 1), len(ranks)),
        "recall_at_3": share(sum(1 for r in ranks if r is not None and r <= 3), len(ranks)),
        "mrr": round(float(np.mean([1.0 / r if r else 0.0 for r in ranks])), 4) if ranks else 0.0,
        "no_answer_accuracy": share(sum(no_answer), len(no_answer)) if no_answer else None,
        "queries": len(queries),
        "mode": mode,
        "embedder": embedder.name,
        "answerable": len(ranks),
        "gold_not_in_kb": sum(1 for row in queries if row["gold"].get("faq_id") not in (None, *known)),
        "no_answer_threshold": retriever.no_answer_threshold,
        "category_prior": use_prior,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if details:
        result["rows"] = rows_out
    return result
