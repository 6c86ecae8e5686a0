"""On-disk cache of embeddings keyed by embedder name, side (query/passage) and text hash.

Rebuilding an index after a knowledge change then embeds only the new texts.
New vectors are appended as small segment files (written atomically), merged
into one when segments pile up, so a live upsert does not rewrite the cache.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.retrieval.embedders import text_key
from service.retrieval.index import write_atomic

log = logging.getLogger("draftdesk.retrieval")
MAX_SEGMENTS = 16


def _slug(name: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9.+-]+", "_", name)[:48]
    return f"{readable}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


class EmbeddingCache:
    def __init__(self, directory: Path | None, embedder_name: str, side: str, dim: int):
        self.directory = Path(directory) if directory is not None else None
        self.prefix = f"{_slug(embedder_name)}-{side}"
        self.dim = dim
        self._rows: dict[bytes, np.ndarray] = {}
        self._pending: dict[bytes, np.ndarray] = {}
        self._lock = threading.Lock()
        if self.directory is not None:
            self._load()

    def __len__(self) -> int:
        return len(self._rows)

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.prefix}-*.npz")) if self.directory and self.directory.exists() else []

    def _load(self) -> None:
        for segment in self._segments():
            try:
                with np.load(segment) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except Exception as exc:  # noqa: BLE001 - a damaged segment only costs re-embedding
                log.warning("ignoring unreadable embedding cache segment %s: %s", segment, exc)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != self.dim:
                continue
            for key, vector in zip(keys.tolist(), vectors):
                self._rows[bytes(key)] = vector

    def get_or_embed(self, texts: list[str], embed: Callable[[list[str]], np.ndarray],
                     batch_size: int = 64, progress=None) -> np.ndarray:
        """Vectors for `texts`, embedding (in batches) only the ones not cached."""
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in self._rows and key not in missing:
                missing[key] = text
        if missing:
            todo = list(missing.items())
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                vectors = embed([text for _, text in chunk])
                with self._lock:
                    for (key, _), vector in zip(chunk, vectors):
                        self._rows[key] = vector
                        self._pending[key] = vector
                if progress is not None:
                    progress.update(len(chunk))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._rows[key] for key in keys]).astype(np.float32, copy=False)

    def flush(self) -> None:
        """Write the vectors embedded since the last flush as a new segment."""
        if self.directory is None:
            self._pending.clear()
            return
        with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, {}
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = self._segments()
        if len(segments) >= MAX_SEGMENTS:
            # Merge everything known into one segment, then drop the old ones.
            rows = self._rows
            target = self.directory / f"{self.prefix}-{uuid.uuid4().hex[:12]}.npz"
            self._write(target, rows)
            for segment in segments:
                if segment != target:
                    segment.unlink(missing_ok=True)
        else:
            self._write(self.directory / f"{self.prefix}-{uuid.uuid4().hex[:12]}.npz", pending)

    @staticmethod
    def _write(path: Path, rows: dict[bytes, np.ndarray]) -> None:
        keys = np.array(list(rows.keys()), dtype="S16")
        vectors = np.vstack(list(rows.values())).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=vectors)
        write_atomic(path, buffer.getvalue())
