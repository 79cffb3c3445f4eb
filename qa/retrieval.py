"""Retrieval: dense and BM25 candidates from the index's engine, fused (convex
combination of normalised scores, aware of languages, or weighted reciprocal rank fusion).

Nothing here depends on which engine answers: an engine (``qa.engines``: FAISS + bm25s,
Qdrant Edge, a Qdrant cluster) is opened from the index's manifest and seen only through
:class:`~qa.engines.Searcher` (``dense``, ``lexical``, optionally ``hybrid``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .engines import Feedback, Hit, RowCache, Searcher, Stored, Where, get_engine

K = TypeVar("K", bound=Hashable)
Backend = Searcher  # what retrieve() searches: an opened engine
__all__ = ["Backend", "Feedback", "Fusion", "Hit", "RowCache", "Where", "convex", "minmax", "open_backend", "retrieve", "rrf"]


def rrf(rankings: Mapping[str, Sequence[K]], weights: Mapping[str, float] | None = None, k: int = 60) -> dict[K, float]:
    """Weighted reciprocal rank fusion: ``score(d) = sum_m w_m / (k + rank_m(d))``, ranks from 1.

    >>> rrf({"bm25": ["a", "b"], "dense": ["b"]}, k=60)["b"] == 1 / 62 + 1 / 61
    True
    """
    fused: dict[K, float] = {}
    for name, ranking in rankings.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        if w == 0:
            continue
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + w / (k + rank)
    return fused


def minmax(scores: Mapping[K, float]) -> dict[K, float]:
    """Scores mapped onto 0..1 (all 1.0 when they are equal).

    >>> minmax({"a": 0.8, "b": 0.9, "c": 0.85})["c"]
    0.5000000000000002
    """
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    spread = high - low
    return {key: (value - low) / spread if spread > 0 else 1.0 for key, value in scores.items()}


def convex(dense: Mapping[K, float], lexical: Mapping[K, float], lexical_share: Mapping[K, float] | float) -> dict[K, float]:
    """Convex combination of normalised scores: ``(1 - s) * dense' + s * lexical'``, with
    dense scores min-max normalised and BM25 scores divided by the best one (a passage
    BM25 did not find scores 0 there). ``s`` may differ per key (by language).

    >>> convex({"a": 0.9, "b": 0.8}, {"b": 4.0}, 0.5) == {"a": 0.5, "b": 0.5}
    True
    """
    d = minmax(dense)
    top = max(lexical.values(), default=0.0)
    out = {}
    for key in dense.keys() | lexical.keys():
        share = lexical_share if isinstance(lexical_share, float | int) else lexical_share[key]
        b = lexical.get(key, 0.0) / top if top > 0 else 0.0
        out[key] = (1 - share) * d.get(key, 0.0) + share * max(b, 0.0)
    return out


def open_backend(index: Stored) -> Backend:
    """The engine the index was built for (``backend`` in its manifest), opened to search."""
    return get_engine(index.manifest["backend"]["type"]).open(index)


@dataclass(frozen=True)
class Fusion:
    """Convex fusion of dense and BM25 scores, aware of languages.

    ``bm25_share`` is BM25's weight for a passage in the question's language,
    ``bm25_share_cross`` for one in the other language (BM25 is strong French-over-French,
    weak across languages). ``cross_lingual_offset`` is added to the cosine of passages in
    the other language: multilingual encoders score a passage in the question's own
    language higher than its translation, which pulls English questions to English text.
    ``source_offset`` is added to the cosine of passages of the documents in ``named``
    (those whose source the question names: "according to the Delors paper"), except
    their reference notes: the question asks what the source says, not what it cites.
    """

    bm25_share: float = 0.2
    bm25_share_cross: float = 0.1
    cross_lingual_offset: float = 0.03
    source_offset: float = 0.03
    named: frozenset[str] = frozenset()


def retrieve(
    backend: Backend,
    query_vector: np.ndarray | None,
    text: str,
    lang: str = "en",
    *,
    mode: str = "hybrid",
    depth: int = 50,
    rrf_k: int = 60,
    weights: Mapping[str, float] | None = None,
    where: Where | None = None,
    timings: dict[str, float] | None = None,
    feedback: Feedback | None = None,
    fusion: Fusion | None = None,
) -> list[Hit]:
    """Candidates for one question (``text``, asked in ``lang``), best first, fused when
    ``mode`` is ``hybrid``: by ``fusion`` (a convex combination of normalised scores) when
    given, else by weighted RRF."""
    import time

    t = time.perf_counter()
    w = weights or {}
    if (
        mode == "hybrid"
        and fusion is None
        and query_vector is not None
        and hasattr(backend, "hybrid")
        and w.get("dense", 1.0) == w.get("bm25", 1.0)
    ):
        # The engine fuses in one request (its RRF equals ours for equal weights).
        hits = backend.hybrid(query_vector, text, lang, depth=depth, rrf_k=rrf_k, weights=weights, where=where, feedback=feedback)
        if timings is not None:
            timings["search"] = (time.perf_counter() - t) * 1000
        return hits
    dense_hits: list[tuple[int, float]] = []
    bm25_hits: list[tuple[int, float]] = []
    if mode in ("hybrid", "dense") and query_vector is not None:
        dense_hits = backend.dense(query_vector, depth, where)
    t_dense = time.perf_counter()
    if mode in ("hybrid", "bm25"):
        rows: list[int] = []
        if feedback is not None and feedback.terms > 0 and mode == "hybrid":
            rows = [r for r, _ in dense_hits[: feedback.docs]]
        bm25_hits = backend.lexical(text, lang, depth, where, rows, feedback.terms if feedback else 0)
    t_bm25 = time.perf_counter()
    if timings is not None:
        timings["dense"] = (t_dense - t) * 1000
        timings["bm25"] = (t_bm25 - t_dense) * 1000
    dense_info = {row: (rank, score) for rank, (row, score) in enumerate(dense_hits, start=1)}
    bm25_info = {row: (rank, score) for rank, (row, score) in enumerate(bm25_hits, start=1)}
    if mode == "dense":
        scored = {row: score for row, score in dense_hits}
    elif mode == "bm25":
        scored = {row: score for row, score in bm25_hits}
    elif fusion is not None and query_vector is not None:
        index = backend.index  # type: ignore[attr-defined]
        rows = np.array(sorted(set(dense_info) | set(bm25_info)), dtype=np.int64)
        cosines = np.asarray(index.vectors[rows], dtype=np.float32) @ query_vector.astype(np.float32) if len(rows) else np.zeros(0)
        cross = index.langs[rows] != lang if len(rows) else np.zeros(0, dtype=bool)
        for i, row in enumerate(rows.tolist()):  # exact cosines, also for passages only BM25 found
            rank = dense_info.get(row, (None, None))[0]
            dense_info[row] = (rank, float(cosines[i]))
        named = np.isin(index.doc_ids[rows], list(fusion.named)) if fusion.named and len(rows) else np.zeros(len(rows), dtype=bool)
        if named.any():  # a source's own text: not the works its reference notes cite
            named &= np.array([not index.chunks[int(r)].is_reference for r in rows], dtype=bool)
        adjusted = {
            int(r): float(c) + (fusion.cross_lingual_offset if x else 0.0) + (fusion.source_offset if n else 0.0)
            for r, c, x, n in zip(rows, cosines, cross, named)
        }
        shares = {int(r): fusion.bm25_share_cross if x else fusion.bm25_share for r, x in zip(rows, cross)}
        scored = convex(adjusted, {row: score for row, score in bm25_hits}, shares)
    else:
        scored = rrf({"dense": [r for r, _ in dense_hits], "bm25": [r for r, _ in bm25_hits]}, weights, rrf_k)
    ordered = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
    return [
        Hit(
            row=row,
            score=score,
            dense_rank=dense_info.get(row, (None, None))[0],
            dense_score=dense_info.get(row, (None, None))[1],
            bm25_rank=bm25_info.get(row, (None, None))[0],
            bm25_score=bm25_info.get(row, (None, None))[1],
        )
        for row, score in ordered
    ]
