"""The default engine, in process: FAISS (exact inner product, or HNSW for large indexes)
and bm25s, their files inside each index version::

    dense.faiss     FAISS inner product, ids from the chunk hashes
    bm25/           bm25s files (no pickle)

The BM25 half (:func:`write_bm25`, :func:`load_bm25`, :class:`Bm25Searcher`) is reusable
by an engine that searches vectors another way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import LANGUAGES, analyse
from ..chunking import Chunk, indexed_text, strip_urls
from .base import BM25_B, BM25_K1, RowCache, Rows, Searcher, Stored, Where, Written, no_options, register, shared_terms

# Exact search below this many chunks, an HNSW graph above it. Measured here (synthetic
# corpora, docs/benchmarks.md): at 100k chunks exact FAISS search took 11 ms a query
# against 1.6 ms for HNSW at efSearch 512 (recall@10 0.995; IVF needed nprobe 256 for
# 0.97); at 1M chunks efSearch 256 gave recall@10 0.970 and 512 gave 0.991.
ANN_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
# Filters that leave at most this many rows are searched exactly when the index is a graph.
EXACT_FILTER_LIMIT = 50_000


def query_tokens(question: str, language: str) -> list[str]:
    """BM25 query terms: the question analysed in its language, plus the other analyser's
    terms (names and cognates then match passages in the other language)."""
    tokens = analyse(question, language)
    seen = set(tokens)
    for other in LANGUAGES:
        if other != language:
            for token in analyse(question, other):
                if token not in seen:
                    seen.add(token)
                    tokens.append(token)
    return tokens


# ---------------------------------------------------------------------------------------
# BM25 (bm25s)


def write_bm25(target: Path, chunks: Sequence[Chunk], context: str) -> None:
    """bm25s over each chunk's indexed text, analysed in the chunk's language."""
    import bm25s

    bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    bm25.index([analyse(indexed_text(c, context), c.lang) or [""] for c in chunks], show_progress=False)
    bm25.save(str(target / "bm25"), show_progress=False)


def load_bm25(path: Path, n: int) -> tuple[Any, list[str]]:
    import bm25s

    bm25 = bm25s.BM25.load(str(path / "bm25"), load_vocab=True, show_progress=False)
    problems = [] if int(bm25.scores["num_docs"]) == n else [f"bm25 has {bm25.scores['num_docs']} documents for {n} chunks"]
    return bm25, problems


class Bm25Searcher:
    """Filters and BM25 search over a loaded index whose ``store`` has a ``bm25``."""

    def __init__(self, index: Stored) -> None:
        self.index = index
        self._masks: dict[Where, np.ndarray] = {}
        self._terms: RowCache[set[str]] = RowCache()

    def mask(self, where: Where | None) -> np.ndarray | None:
        """Rows a filter allows (None: all); one array per filter, kept."""
        if where is None or where.everything:
            return None
        allowed = self._masks.get(where)
        if allowed is None:
            allowed = np.ones(len(self.index.ids), dtype=bool)
            if where.lang is not None:
                allowed &= self.index.langs == where.lang
            if where.doc is not None:
                allowed &= self.index.doc_ids == where.doc
            self._masks[where] = allowed  # as many as languages x documents at most
        return allowed

    def lexical(
        self, text: str, lang: str, depth: int, where: Where | None, feedback: Sequence[int] = (), feedback_terms: int = 0
    ) -> list[tuple[int, float]]:
        tokens = query_tokens(text, lang)
        if feedback and feedback_terms > 0:
            tokens += [t for t in self.feedback_terms(feedback, feedback_terms) if t not in tokens]
        return self.lexical_tokens(tokens, depth, self.mask(where))

    def lexical_tokens(self, tokens: list[str], depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """BM25 over already analysed terms."""
        if not tokens or depth <= 0:
            return []
        scores = np.asarray(self.index.store.bm25.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        depth = min(depth, len(scores))
        if depth == 0:
            return []
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]

    def feedback_terms(self, rows: Sequence[int], n: int) -> list[str]:
        """Terms (longer than 2 characters) shared by at least two of ``rows``, each analysed
        in its own language."""

        def terms(row: int) -> set[str]:
            chunk = self.index.chunks[row]
            return set(analyse(strip_urls(chunk.text), chunk.lang))

        return shared_terms((self._terms.get(r, lambda r=r: terms(r)) for r in rows), n, keep=lambda t: len(t) > 2)


# ---------------------------------------------------------------------------------------
# Dense (FAISS)


class LocalStore:
    """A version's FAISS index and bm25s model, as loaded."""

    def __init__(self, dense: Any, bm25: Any) -> None:
        self.dense = dense  # faiss.IndexIDMap2 over a flat or HNSW index
        self.bm25 = bm25  # bm25s.BM25


def dense_index(vectors: np.ndarray, ids: np.ndarray):  # type: ignore[no-untyped-def]
    """Exact inner-product search below ANN_THRESHOLD chunks, HNSW above it."""
    import faiss

    n, dim = vectors.shape
    if n < ANN_THRESHOLD:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        info = {"type": "flat", "threshold": ANN_THRESHOLD}
    else:
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        index = faiss.IndexIDMap2(hnsw)
        info = {
            "type": "hnsw",
            "M": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": HNSW_EF_SEARCH,
            "threshold": ANN_THRESHOLD,
        }
    if n:
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is parallel; queries are not
        try:
            index.add_with_ids(vectors, ids)
        finally:
            faiss.omp_set_num_threads(threads)
    return index, info


def search_params(manifest: dict, selector=None):  # type: ignore[no-untyped-def]
    """FAISS search parameters for the version's index type, with an optional id selector."""
    import faiss

    if manifest["dense"]["type"] == "hnsw":
        params = faiss.SearchParametersHNSW()
        params.efSearch = manifest["dense"]["ef_search"]
    elif selector is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params


class LocalBackend(Bm25Searcher):
    """FAISS (exact inner product or HNSW) and bm25s over a loaded index."""

    def __init__(self, index: Stored) -> None:
        import faiss

        # One query at a time: starting OpenMP threads costs more than the search itself
        # (0.5 ms against 0.01 ms for a flat search of the bundled corpus).
        faiss.omp_set_num_threads(1)
        super().__init__(index)

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]:
        import faiss

        ids = self.index.ids
        n = len(ids)
        if n == 0 or depth <= 0:
            return []
        allowed = self.mask(where)
        selector = None
        if allowed is not None:
            rows = np.flatnonzero(allowed)
            if not len(rows):
                return []
            if self.index.manifest["dense"]["type"] != "flat" and len(rows) <= EXACT_FILTER_LIMIT:
                # A graph search restricted to a few rows finds few of them: search exactly.
                scores = np.asarray(self.index.vectors[rows], dtype=np.float32) @ query_vector.astype(np.float32)
                top = np.argsort(-scores, kind="stable")[:depth]
                return [(int(rows[i]), float(scores[i])) for i in top]
            selector = faiss.IDSelectorBatch(ids[allowed])
        params = search_params(self.index.manifest, selector)
        scores, found = self.index.store.dense.search(query_vector.reshape(1, -1).astype(np.float32), min(depth, n), params=params)
        keep = found[0] >= 0
        rows = self.index.rows_of(found[0][keep])
        return [(int(r), float(s)) for r, s in zip(rows, scores[0][keep]) if r >= 0]


class LocalEngine:
    """FAISS + bm25s files in the version directory (``--backend faiss``, the default)."""

    name = "faiss"

    def options(self, url: str | None, collection: str | None, before: dict | None) -> dict:
        return no_options(self.name, url, collection)

    def check(self, spec: dict) -> None:
        pass  # files only

    def write(self, target: Path, spec: dict, rows: Rows, previous: Stored | None, fresh: set[str], live: dict) -> Written:
        import faiss

        dense, info = dense_index(rows.vectors, rows.ids)
        faiss.write_index(dense, str(target / "dense.faiss"))
        write_bm25(target, rows.chunks, rows.context)
        return Written(backend=dict(spec), manifest={"dense": info})

    def load(self, path: Path, manifest: dict, ids: np.ndarray) -> tuple[LocalStore, list[str]]:
        import faiss

        dense = faiss.read_index(str(path / "dense.faiss"))
        n, dim = len(ids), manifest["encoder"]["dim"]
        problems = []
        if dense.ntotal != n:
            problems.append(f"dense.faiss has {dense.ntotal} vectors for {n} chunks")
        elif n and not np.array_equal(faiss.vector_to_array(dense.id_map), ids):
            problems.append("dense.faiss rows are not in chunks.jsonl order")
        if dense.d != dim:
            problems.append(f"dense.faiss has dimension {dense.d}, the encoder {dim}")
        bm25, bm25_problems = load_bm25(path, n)
        return LocalStore(dense, bm25), problems + bm25_problems

    def open(self, index: Stored) -> Searcher:
        return LocalBackend(index)


register(LocalEngine())
