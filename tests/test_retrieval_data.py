"""The project's retrieval sets: LABELING.md rows, held apart from each other and from other data, and a recall floor.

eval/data/retrieval.jsonl is held out (report its figures, never tune on it);
eval/data/retrieval_tune.jsonl is the one to tune on. Both are paraphrased
customer messages against knowledge/faq.jsonl, with `gold.faq_id` null where
the FAQ has no answer.
"""
from __future__ import annotations

import pytest

from service.config import PROJECT_ROOT
from service.kb import read_jsonl
from tests.test_data_hygiene import near_duplicates

DATA = PROJECT_ROOT / "eval" / "data"
HELD_OUT = DATA / "retrieval.jsonl"
TUNE = DATA / "retrieval_tune.jsonl"
FAQ = PROJECT_ROOT / "knowledge" / "faq.jsonl"

CHANNELS = {"app", "web", "phone", "email", "wechat", "sms", "social", "marketplace", "store"}
CATEGORIES = {"inquiry", "after_sales", "complaint", "suggestion", None}
PRIORITIES = {"urgent", "high", "medium", "low", None}


def _rows(path):
    return list(read_jsonl(path))


@pytest.mark.parametrize("path", [HELD_OUT, TUNE], ids=lambda p: p.name)
def test_rows_follow_the_labeling_guide(path):
    faq_ids = {row["id"] for row in read_jsonl(FAQ)}
    rows = _rows(path)
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["channel"] in CHANNELS, row["id"]
        assert isinstance(row["text"], str) and row["text"].strip(), row["id"]
        assert row.get("customer", {}).get("tier", "regular") in {"regular", "vip"}, row["id"]
        gold = row["gold"]
        assert set(gold) >= {"category", "priority", "faq_id", "must_not_contain"}, row["id"]
        assert gold["category"] in CATEGORIES and gold["priority"] in PRIORITIES, row["id"]
        assert gold["faq_id"] is None or gold["faq_id"] in faq_ids, row["id"]
        assert all(value in row["text"] for value in gold["must_not_contain"]), row["id"]


def test_the_held_out_set_is_large_and_covers_the_whole_faq():
    rows = _rows(HELD_OUT)
    answered = [row["gold"]["faq_id"] for row in rows if row["gold"]["faq_id"]]
    assert len(answered) >= 150
    assert sum(1 for row in rows if row["gold"]["faq_id"] is None) >= 10
    assert set(answered) == {row["id"] for row in read_jsonl(FAQ)}
    assert len(_rows(TUNE)) >= 40


def test_sets_share_no_message_with_each_other_or_with_other_data():
    held_out = [row["text"] for row in _rows(HELD_OUT)]
    tune = [row["text"] for row in _rows(TUNE)]
    assert near_duplicates(held_out, tune) == []
    others = [row["text"] for row in read_jsonl(PROJECT_ROOT / "knowledge" / "examples.jsonl")]
    for path in sorted(DATA.glob("*.jsonl")):
        if path not in (HELD_OUT, TUNE):
            others += [row["text"] for row in read_jsonl(path)]
    for texts in (held_out, tune):
        assert near_duplicates(texts, others) == []


def test_queries_paraphrase_rather_than_copy_the_faq_questions():
    questions = [row["question"] for row in read_jsonl(FAQ)]
    for path in (HELD_OUT, TUNE):
        assert near_duplicates([row["text"] for row in _rows(path)], questions, threshold=0.5) == [], path.name


def test_held_out_recall_stays_above_its_floor(index_cache):
    """Hybrid with the category prior, as the service ranks, on the held-out set (measured recall@1 0.85,
    recall@3 0.95, no-answer 0.80; 0.84 / 0.94 / 0.80 when this floor was set, before the prior).

    Passage embeddings come from the session's index cache (the runtime other
    tests build embeds the same FAQ views), so this costs the query embeddings."""
    from service.retrieval.embedders import E5Embedder
    from service.retrieval.evaluate import evaluate_retrieval, load_faq, load_queries

    from service.runtime import category_prior_for_eval
    from tests.conftest import make_settings

    embedder = E5Embedder()
    prior = category_prior_for_eval(make_settings("sqlite:///:memory:", index_cache), embedder)
    result = evaluate_retrieval(load_faq(FAQ), load_queries(HELD_OUT), embedder, "hybrid",
                                cache_dir=index_cache / "embeddings",
                                retriever_options={"approximate_above": 10_000}, category_prior=prior)
    assert result["category_prior"] is True
    assert result["recall_at_1"] >= 0.80, result
    assert result["recall_at_3"] >= 0.90, result
    assert result["no_answer_accuracy"] >= 0.5, result
