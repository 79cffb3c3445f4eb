"""Retrieval: dense and BM25 candidates, fused by weighted reciprocal rank fusion.

Retrieval goes through a small backend interface (:class:`Backend`) so that another
engine can serve the same queries: :class:`LocalBackend` is FAISS + bm25s in process,
``qa.qdrant.QdrantBackend`` is Qdrant (an embedded Edge shard, or a cluster).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from .analysis import LANGUAGES, analyse
from .chunking import strip_urls
from .index import Index

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk (``row`` in the index), with what each retriever said (not
    known when the engine fused them itself: Qdrant's one-request hybrid search)."""

    row: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None


class RowCache(Generic[V]):
    """Values computed per index row, kept for the most recent rows (bounded: started afresh
    past ``size``), across questions."""

    def __init__(self, size: int = 100_000) -> None:
        self._values: dict[int, V] = {}
        self._size = size

    def get(self, row: int, make: Callable[[], V]) -> V:
        value = self._values.get(row)
        if value is None:
            if len(self._values) >= self._size:
                self._values.clear()
            value = self._values[row] = make()
        return value


def shared_terms(term_sets: Iterable[set[K]], n: int, keep: Callable[[K], bool] | None = None) -> list[K]:
    """Pseudo-relevance feedback: up to ``n`` terms found in at least two of the sets, most
    shared first, then in sort order (a set's order changes from one process to the next)."""
    counts: Counter[K] = Counter()
    for terms in term_sets:
        counts.update(terms)
    shared = sorted((t for t, c in counts.items() if c >= 2 and (keep is None or keep(t))), key=lambda t: (-counts[t], t))  # type: ignore[type-var]
    return shared[:n]


@dataclass(frozen=True)
class Where:
    """Which chunks a query may return: one language, one document, or both."""

    lang: str | None = None
    doc: str | None = None

    @property
    def everything(self) -> bool:
        return self.lang is None and self.doc is None


class Backend(Protocol):
    """What retrieval needs from an engine. Rows are chunk positions in the index.

    ``lexical`` takes the question's text: each engine analyses it its own way (French and
    English analysers both, so names and cognates match passages in the other language).
    ``feedback`` rows are the top dense passages: terms they share join the query
    (pseudo-relevance feedback), up to ``feedback_terms``.

    An engine that fuses in one request (Qdrant) also has ``hybrid`` with the arguments of
    :func:`retrieve`; it is used in hybrid mode.
    """

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]: ...

    def lexical(
        self, text: str, lang: str, depth: int, where: Where | None, feedback: Sequence[int] = (), feedback_terms: int = 0
    ) -> list[tuple[int, float]]: ...


# Filters that leave at most this many rows are searched exactly when the index is a graph.
EXACT_FILTER_LIMIT = 50_000


class LocalBackend:
    """FAISS (exact inner product or HNSW) and bm25s over a loaded :class:`Index`."""

    def __init__(self, index: Index) -> None:
        import faiss

        # One query at a time: starting OpenMP threads costs more than the search itself
        # (0.5 ms against 0.01 ms for a flat search of the bundled corpus).
        faiss.omp_set_num_threads(1)
        self.index = index
        self._faiss_ids = index.rows["faiss_id"]
        self._masks: dict[Where, np.ndarray] = {}
        self._terms: RowCache[set[str]] = RowCache()

    def mask(self, where: Where | None) -> np.ndarray | None:
        """Rows a filter allows (None: all); one array per filter, kept."""
        if where is None or where.everything:
            return None
        allowed = self._masks.get(where)
        if allowed is None:
            allowed = np.ones(len(self.index.rows), dtype=bool)
            if where.lang is not None:
                allowed &= self.index.langs == where.lang
            if where.doc is not None:
                allowed &= self.index.doc_ids == where.doc
            self._masks[where] = allowed  # as many as languages x documents at most
        return allowed

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]:
        import faiss

        n = len(self.index.rows)
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
            selector = faiss.IDSelectorBatch(self._faiss_ids[allowed])
        params = self.index.search_params(selector)
        scores, ids = self.index.dense.search(query_vector.reshape(1, -1).astype(np.float32), min(depth, n), params=params)
        keep = ids[0] >= 0
        rows = self.index.rows_of(ids[0][keep])
        return [(int(r), float(s)) for r, s in zip(rows, scores[0][keep]) if r >= 0]

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
        scores = np.asarray(self.index.bm25.get_scores(tokens), dtype=np.float32)
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


def open_backend(index: Index) -> Backend:
    """The engine the index was built for (``backend`` in its manifest)."""
    if index.manifest["backend"]["type"] == "faiss":
        return LocalBackend(index)
    from .qdrant import QdrantBackend

    return QdrantBackend.open(index)


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


@dataclass(frozen=True)
class Feedback:
    """Pseudo-relevance feedback for BM25: up to ``terms`` terms shared by the top ``docs``
    dense passages join the question's terms."""

    docs: int = 3
    terms: int = 3


@dataclass(frozen=True)
class Fusion:
    """Convex fusion of dense and BM25 scores, aware of languages.

    ``bm25_share`` is BM25's weight for a passage in the question's language,
    ``bm25_share_cross`` for one in the other language (BM25 is strong French-over-French,
    weak across languages). ``cross_lingual_offset`` is added to the cosine of passages in
    the other language: multilingual encoders score a passage in the question's own
    language higher than its translation, which pulls English questions to English text.
    ``source_offset`` is added to the cosine of passages of the documents in ``named``
    (those whose source the question names: "according to the Delors paper").
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
