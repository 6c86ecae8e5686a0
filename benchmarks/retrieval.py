"""Retrieval speed and memory.

    .venv/bin/python benchmarks/retrieval.py            # 1k / 10k / 100k entries, ~4 minutes on 2 cores
    .venv/bin/python benchmarks/retrieval.py --quick    # 1k / 10k, well under a minute
    .venv/bin/python benchmarks/retrieval.py --json     # one JSON object as well

Figures are medians over `--repeats` runs. Above the real FAQ, collections are
synthetic: each entry has three view vectors drawn around real e5 embeddings of
FAQ views (so neighbourhoods look like real ones, not uniform noise) and a
lexical document sampled from the real FAQ's tokens. Queries are real e5
embeddings of typical customer messages.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.retrieval.embedders import E5Embedder  # noqa: E402
from service.retrieval.evaluate import load_faq  # noqa: E402
from service.retrieval.index import VectorIndex  # noqa: E402
from service.retrieval.retriever import KnowledgeRetriever, _Entry, make_faq_entry  # noqa: E402

MESSAGES = [
    "我的订单三天了还没发货，能帮我查一下到哪了吗？",
    "洗衣机一直显示E3，衣服泡在里面拿不出来，怎么办",
    "刚买的冰箱不制冷，能换新的吗",
    "空调安装师傅说要另外收费，这个合理吗？",
    "我想开一张增值税专用发票，抬头是公司的",
    "会员积分怎么用？下单的时候没看到抵扣",
    "退货申请提交了一周了还没退款",
    "你们的客服态度太差了，我要投诉",
    "热水器漏水，地上全是水，请尽快派人来看看",
    "电视开机黑屏但是有声音",
    "能不能把我的收货地址改一下，还没发货",
    "XQG100-B14这款洗衣机支持烘干吗",
    "建议你们的APP增加一个按预约时间送货的选项",
    "优惠券过期了还能用吗",
    "扫地机器人充不进电",
    "买了不到七天，不想要了可以退吗",
    "燃气灶打不着火，一直咔咔响",
    "物流显示已签收但是我没收到货",
    "维修师傅什么时候能上门？已经等了两天了",
    "保修期是多久？发票丢了还能保修吗",
    "微波炉加热的时候有火花，还能用吗",
    "以旧换新怎么参加，旧机器谁来拉走",
    "付款的时候扣了两次钱",
    "账号登录不上，一直提示验证码错误",
]

FALLBACK_FAQ = [
    {"id": f"b-{i:02d}", "question": q, "answer": a, "category": c}
    for i, (q, a, c) in enumerate([
        ("订单什么时候发货？", "现货商品付款后48小时内发货，预售商品以页面时间为准。", "after_sales"),
        ("怎么查物流进度？", "在“我的订单”点击查看物流即可看到实时进度。", "after_sales"),
        ("七天无理由退货怎么申请？", "签收七天内、商品完好，在订单页申请退货。", "after_sales"),
        ("退款多久到账？", "退货验收后1-3个工作日原路退回。", "after_sales"),
        ("洗衣机显示E3是什么故障？", "E3为门锁异常，关紧机门重启，仍出现请报修。", "after_sales"),
        ("空调安装收费吗？", "标准安装免费，辅材按价目表收费。", "inquiry"),
        ("怎么开增值税专用发票？", "在订单页申请开票，填写公司抬头和税号。", "inquiry"),
        ("会员积分怎么抵扣？", "下单时勾选使用积分，每100积分抵1元。", "inquiry"),
        ("保修期多久？", "整机保修一年，核心部件三年，凭订单即可保修。", "inquiry"),
        ("怎么修改收货地址？", "未发货订单可在订单详情修改地址。", "after_sales"),
        ("冰箱不制冷怎么办？", "检查温控档位和通风，仍不制冷请预约上门检测。", "after_sales"),
        ("以旧换新怎么参加？", "下单时选择以旧换新，送新机时回收旧机。", "inquiry"),
    ])
]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def knowledge() -> list[dict]:
    path = ROOT / "knowledge" / "faq.jsonl"
    return load_faq(path) if path.exists() else FALLBACK_FAQ


def timed_queries(retriever: KnowledgeRetriever, texts: list[str], vectors: np.ndarray | None,
                  rounds: int) -> list[float]:
    """Milliseconds per query; with `vectors` None the query is embedded too (cache emptied first)."""
    out = []
    for _ in range(rounds):
        for i, text in enumerate(texts):
            if vectors is None:
                retriever._query_cache.clear()
                started = time.perf_counter()
                retriever.search("faq", text, k=5)
            else:
                started = time.perf_counter()
                retriever.search_vector("faq", text, vectors[i], k=5)
            out.append((time.perf_counter() - started) * 1000)
    return out


def synthetic_collection(retriever: KnowledgeRetriever, n: int, seeds: list, seed_vectors: np.ndarray,
                         rng: np.random.Generator) -> float:
    """Fill the retriever's FAQ collection with `n` synthetic entries; returns seconds spent indexing."""
    col = retriever._collection("faq")
    token_pool = [token for entry in seeds for token in entry.tokens] or ["问题"]
    views = 3
    labels = np.empty(n * views, dtype=np.int64)
    vectors = np.empty((n * views, seed_vectors.shape[1]), dtype=np.float32)
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        rows = (stop - start) * views
        # a random blend of two real view vectors plus noise: a continuum of
        # topics like real text, not tight clusters around a few seeds
        weight = rng.uniform(0.0, 1.0, (rows, 1)).astype(np.float32)
        chunk = (weight * seed_vectors[rng.integers(0, len(seed_vectors), rows)]
                 + (1 - weight) * seed_vectors[rng.integers(0, len(seed_vectors), rows)])
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        chunk += rng.standard_normal((rows, seed_vectors.shape[1])).astype(np.float32) * 0.03
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        vectors[start * views:stop * views] = chunk
    started = time.perf_counter()
    for i in range(n):
        entry_id = f"syn-{i}"
        tokens = [token_pool[j] for j in rng.integers(0, len(token_pool), 24)]
        entry = _Entry(id=entry_id, key=i + 1, category="inquiry", title=entry_id,
                       views=["q", "a", "qa"], view_kinds=["question", "answer", "qa"], tokens=tokens,
                       identifiers=frozenset(), digest=hashlib.sha1(entry_id.encode()).hexdigest())
        col.put(entry)
        labels[i * views:(i + 1) * views] = entry.labels()
    col.index.add(labels, vectors)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k and 10k entries only, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    repeats = args.repeats or (1 if args.quick else 3)
    rng = np.random.default_rng(7)
    wall = time.perf_counter()
    report: dict = {"quick": args.quick, "repeats": repeats, "threads": os.environ.get("OMP_NUM_THREADS", "default")}

    embedder = E5Embedder()
    faq = knowledge()
    print(f"embedder {embedder.name}; FAQ {len(faq)} entries; repeats {repeats}")

    # 1. typical message on the real FAQ (hybrid, the default)
    retriever = KnowledgeRetriever(embedder, None, mode="hybrid")
    retriever.build(faq, [])
    timed_queries(retriever, MESSAGES[:3], None, 1)  # warm up
    runs = [timed_queries(retriever, MESSAGES, None, 3) for _ in range(repeats)]
    typical = median([pct(r, 50) for r in runs])
    report["typical_message_embed_search_p50_ms"] = round(typical, 2)
    print(f"typical message, embed+search p50 on the FAQ ({len(faq)} entries): {typical:.2f} ms (target ≤ 20)")

    # 2. build rate with embedding (e5, empty cache), hybrid
    build_rows = [dict(row, id=f"{row['id']}-{copy}", question=f"{row['question']}（{copy}）")
                  for copy in range(1 if args.quick else 3) for row in faq][: (60 if args.quick else 200)]
    rates = []
    for _ in range(repeats):
        fresh = KnowledgeRetriever(embedder, None, mode="hybrid")
        started = time.perf_counter()
        fresh.build(build_rows, [])
        rates.append(len(build_rows) / (time.perf_counter() - started))
    report["build_entries_per_s_with_e5"] = round(median(rates), 1)
    print(f"build rate incl. e5 embedding ({len(build_rows)} entries, ~{sum(len(make_faq_entry(r).views) for r in build_rows) / len(build_rows):.1f} views each): "
          f"{median(rates):.1f} entries/s")

    # seeds for synthetic collections
    seeds = [make_faq_entry(row) for row in faq]
    seed_vectors = embedder.embed_passages([view for entry in seeds for view in entry.views])
    query_vectors = embedder.embed_queries(MESSAGES)

    report["sizes"] = {}
    for n in sizes:
        gc.collect()
        before = rss_mb()
        scaled = KnowledgeRetriever(embedder, None, mode="hybrid")
        seconds = synthetic_collection(scaled, n, seeds, seed_vectors, rng)
        grown = rss_mb() - before
        kind = scaled.stats()["faq"]["kind"]
        timed_queries(scaled, MESSAGES[:3], None, 1)
        full = [timed_queries(scaled, MESSAGES, None, 3) for _ in range(repeats)]
        only = [timed_queries(scaled, MESSAGES, query_vectors, 3) for _ in range(repeats)]
        dense_only = KnowledgeRetriever.__new__(KnowledgeRetriever)
        dense_only.__dict__.update(scaled.__dict__)
        dense_only.mode = "dense"
        only_dense = [timed_queries(dense_only, MESSAGES, query_vectors, 3) for _ in range(repeats)]
        row = {
            "kind": kind, "vectors": scaled.stats()["faq"]["vectors"],
            "embed_search_p50_ms": round(median([pct(r, 50) for r in full]), 2),
            "embed_search_p95_ms": round(median([pct(r, 95) for r in full]), 2),
            "search_only_p50_ms": round(median([pct(r, 50) for r in only]), 2),
            "search_only_p95_ms": round(median([pct(r, 95) for r in only]), 2),
            "dense_search_only_p50_ms": round(median([pct(r, 50) for r in only_dense]), 2),
            "index_build_entries_per_s": round(n / seconds),
            "rss_growth_mb": round(grown, 1),
        }
        if n == sizes[-1]:
            # HNSW (or flat) top-10 against exact search over the same vectors
            index = scaled._collection("faq").index
            ids = index.ids()
            exact = VectorIndex(index.dim, approximate_above=len(ids) + 1)
            exact.add(ids, index.reconstruct(ids))
            _, exact_ids = exact.search(query_vectors, 10)
            # at k=10 (efSearch = the index's default) and at the depth the retriever fetches
            for label, depth in (("recall_at_10_vs_flat", 10), ("recall_at_10_vs_flat_retriever_depth", 240)):
                _, approx_ids = index.search(query_vectors, depth)
                recall = np.mean([len(set(a[:10]) & set(e)) / 10
                                  for a, e in zip(approx_ids.tolist(), exact_ids.tolist())])
                row[label] = round(float(recall), 4)
            del exact
        report["sizes"][n] = row
        print(f"{n:>7,} entries ({row['vectors']:,} vectors, {kind}): embed+search p50 {row['embed_search_p50_ms']:.2f} ms"
              f" p95 {row['embed_search_p95_ms']:.2f} ms | search only p50 {row['search_only_p50_ms']:.2f} ms"
              f" p95 {row['search_only_p95_ms']:.2f} ms (dense only {row['dense_search_only_p50_ms']:.2f} ms)"
              f" | index build {row['index_build_entries_per_s']:,} entries/s | RSS +{grown:.0f} MB"
              + (f" | recall@10 vs flat {row['recall_at_10_vs_flat']:.3f} (at the retriever's depth "
                 f"{row['recall_at_10_vs_flat_retriever_depth']:.3f})" if "recall_at_10_vs_flat" in row else ""))
        del scaled, dense_only
        gc.collect()

    largest = sizes[-1]
    per_100k = report["sizes"][largest]["rss_growth_mb"] * 100_000 / largest
    report["rss_mb_per_100k_entries"] = round(per_100k, 1)
    report["search_only_p50_ms_at_largest"] = report["sizes"][largest]["search_only_p50_ms"]
    note = "" if largest == 100_000 else f" (extrapolated from {largest:,})"
    print(f"resident memory per 100k entries: {per_100k:.0f} MB{note}")
    print(f"search only p50 at {largest:,}: {report['search_only_p50_ms_at_largest']:.2f} ms (target ≤ 5)")
    report["seconds"] = round(time.perf_counter() - wall, 1)
    print(f"total {report['seconds']:.0f} s")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
