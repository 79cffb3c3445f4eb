"""Embedding: texts -> vectors through an encoder, with a cache of every vector computed.

The cache lives inside the index directory (``<index>/embeddings/<encoder>/``), keyed by
(encoder id, sha256 of the exact text embedded), so a rebuild, a settings change that
keeps texts, or a backend switch never embeds a text twice. It is a set of segments, each
a pair of ``.npy`` files (keys: 128 bits of the hash as two uint64; vectors: float32)
written aside and renamed into place, keys last: a killed build leaves at most a stray
temporary file, never a segment that lies. No pickle.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .encoders import Encoder

MAX_SEGMENTS = 8  # merged into one past this many


def text_key(text: str) -> tuple[int, int]:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:16], "little")


class EmbeddingCache:
    """Vectors of texts already embedded by one encoder.

    Example:
        >>> cache = EmbeddingCache("index/embeddings", encoder.id, encoder.dim)
        >>> vectors = embed(encoder, ["Bonjour"], cache=cache)  # embedded once, then read
        >>> cache.save()
    """

    def __init__(self, root: str | Path, encoder_id: str, dim: int) -> None:
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id)
        self.encoder_id = encoder_id
        self.dim = dim
        self._where: dict[tuple[int, int], tuple[int, int]] = {}
        self._segments: list[np.ndarray] = []
        self._new_keys: list[tuple[int, int]] = []
        self._new_vectors: list[np.ndarray] = []
        self._read()

    def _read(self) -> None:
        if not self.dir.is_dir():
            return
        for keys_path in sorted(self.dir.glob("*.keys.npy")):
            vectors_path = keys_path.with_name(keys_path.name.replace(".keys.npy", ".vectors.npy"))
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vectors = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue  # a damaged segment is only a cache miss
            if keys.ndim != 2 or keys.shape[1] != 2 or vectors.shape != (len(keys), self.dim):
                continue
            segment = len(self._segments)
            self._segments.append(vectors)
            for row, (a, b) in enumerate(keys.tolist()):
                self._where[(a, b)] = (segment, row)

    def get(self, keys: Sequence[tuple[int, int]]) -> tuple[np.ndarray, list[int]]:
        """Vectors for ``keys`` (zeros where missing) and the positions missing."""
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        missing = []
        for i, key in enumerate(keys):
            place = self._where.get(key)
            if place is None:
                missing.append(i)
            else:
                out[i] = self._vector(place)
        return out, missing

    def put(self, keys: Sequence[tuple[int, int]], vectors: np.ndarray) -> None:
        """Remember vectors (written by :meth:`save`)."""
        for key, vector in zip(keys, np.asarray(vectors, dtype=np.float32)):
            if key not in self._where:
                self._where[key] = (-1, len(self._new_keys))
                self._new_keys.append(key)
                self._new_vectors.append(vector)

    def save(self) -> None:
        """Write what was added as a new segment; merge the segments past MAX_SEGMENTS."""
        if not self._new_keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("*.keys.npy"))
        if len(existing) + 1 > MAX_SEGMENTS:
            keys = np.array(list(self._where), dtype=np.uint64).reshape(-1, 2)
            vectors = np.stack([self._vector(place) for place in self._where.values()]) if self._where else np.zeros((0, self.dim))
            self._write(keys, vectors)
            for old in existing:
                old.unlink(missing_ok=True)
                old.with_name(old.name.replace(".keys.npy", ".vectors.npy")).unlink(missing_ok=True)
        else:
            self._write(np.array(self._new_keys, dtype=np.uint64).reshape(-1, 2), np.stack(self._new_vectors))
        self._new_keys, self._new_vectors = [], []
        self._where.clear()
        self._segments.clear()
        self._read()

    def _vector(self, place: tuple[int, int]) -> np.ndarray:
        segment, row = place
        return self._new_vectors[row] if segment < 0 else np.asarray(self._segments[segment][row])

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        for suffix, array in ((".vectors.npy", np.asarray(vectors, dtype=np.float32)), (".keys.npy", keys)):
            tmp = self.dir / f".tmp-{name}{suffix}"
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / f"{name}{suffix}")


def embed(
    encoder: Encoder,
    texts: Sequence[str],
    what: str = "texts",
    progress: bool = False,
    *,
    cache: EmbeddingCache | None = None,
    batch: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Passage vectors of ``texts`` in order, read from ``cache`` where it has them; the
    rest embedded in batches here (a progress bar per text, so its ETA is honest), or all
    at once by an encoder that spreads the work itself (``qa.distributed.RayEncoder``)."""
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    keys = [text_key(t) for t in texts]
    if cache is not None:
        out, todo = cache.get(keys)
    else:
        todo = list(range(len(texts)))
    if not todo:
        return out
    if getattr(encoder, "distributes", False):
        out[todo] = encoder.encode([texts[i] for i in todo])
        if on_batch is not None:
            on_batch(len(todo))
    else:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc=f"embedding {len(todo)} {what}", unit="text", leave=False, smoothing=0.1)
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            out[part] = encoder.encode([texts[j] for j in part])
            if bar is not None:
                bar.update(len(part))
            if on_batch is not None:
                on_batch(len(part))
        if bar is not None:
            bar.close()
    if cache is not None:
        cache.put([keys[i] for i in todo], out[todo])
    return out
