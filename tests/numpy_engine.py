"""A test-only search engine: exact dense search in numpy over the version's stored
vectors, and the local engine's BM25. It is what adding an engine takes: this one file
and its ``register`` call; nothing in ``qa/`` names it.

The test suite registers it (``tests/test_backends.py``) and runs the whole backend
contract over it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.engines import Rows, Searcher, Stored, Where, Written, no_options, register
from qa.engines.local import Bm25Searcher, load_bm25, write_bm25

NAME = "numpy-test"


class NumpySearcher(Bm25Searcher):
    """Every stored vector scored against the question (``vectors.npy``), best first."""

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]:
        if depth <= 0 or not len(self.index.ids):
            return []
        scores = np.asarray(self.index.vectors, dtype=np.float32) @ query_vector.astype(np.float32)
        allowed = self.mask(where)
        rows = np.arange(len(scores)) if allowed is None else np.flatnonzero(allowed)
        top = rows[np.argsort(-scores[rows], kind="stable")[:depth]]
        return [(int(r), float(scores[r])) for r in top]


class NumpyEngine:
    name = NAME

    def options(self, url: str | None, collection: str | None, before: dict | None) -> dict:
        return no_options(self.name, url, collection)

    def check(self, spec: dict) -> None:
        pass

    def write(self, target: Path, spec: dict, rows: Rows, previous: Stored | None, fresh: set[str], live: dict) -> Written:
        write_bm25(target, rows.chunks, rows.context)  # the dense side reads vectors.npy, written by the index
        return Written(backend=dict(spec))

    def load(self, path: Path, manifest: dict, ids: np.ndarray):  # type: ignore[no-untyped-def]
        bm25, problems = load_bm25(path, len(ids))
        return _Store(bm25), problems

    def open(self, index: Stored) -> Searcher:
        return NumpySearcher(index)


class _Store:
    def __init__(self, bm25) -> None:  # type: ignore[no-untyped-def]
        self.bm25 = bm25


register(NumpyEngine())
