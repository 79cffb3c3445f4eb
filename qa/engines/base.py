"""What every search engine is: the :class:`Engine` protocol, the registry by name, and the
vocabulary engines and retrieval share (:class:`Where`, :class:`Hit`, feedback terms).

An engine does two things with one index version:

- **write** its own structures into the version directory being built (or, for a
  server, into a collection the manifest names), from the chunk rows and vectors the
  index hands it: a full build, or an update from the previous version (``previous``,
  with ``fresh`` naming the documents added or changed);
- **open** them to search: ``dense`` (a query vector), ``lexical`` (the question's text,
  analysed the engine's own way) and, when the engine fuses in one request, ``hybrid``.

The index (``qa.index``) names an engine only by the string in its manifest
(``backend.type``) and asks this registry for it; retrieval (``qa.retrieval``) only sees
the :class:`Searcher` it opens. A new engine is one module in ``qa/engines/`` that calls
:func:`register` (or a class registered from anywhere, as the test suite does with an
exact numpy engine): nothing above this layer changes.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from ..chunking import Chunk
from ..errors import InputError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_ENGINE = "faiss"
# BM25's term saturation and length normalisation, shared by every engine (bm25s's and
# Qdrant's Lucene BM25): Anserini's and Pyserini's defaults for passages, not bm25s's
# 1.5 / 0.75. Measured on both sets (eval/README.md): BM25 alone gains on SPF's short
# sheets (passage@1 0.552 -> 0.600), hybrid holds. Recorded in the manifest's settings.
BM25_K1, BM25_B = 0.9, 0.4


@dataclass(frozen=True)
class Where:
    """Which chunks a query may return: one language, one document, or both."""

    lang: str | None = None
    doc: str | None = None

    @property
    def everything(self) -> bool:
        return self.lang is None and self.doc is None


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


@dataclass(frozen=True)
class Feedback:
    """Pseudo-relevance feedback for BM25: up to ``terms`` terms shared by the top ``docs``
    dense passages join the question's terms."""

    docs: int = 3
    terms: int = 3


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


class Stored(Protocol):
    """What an engine reads from a loaded index version (``qa.index.Index`` is one).

    Row ``i`` is chunk ``i`` everywhere; ``ids`` are the chunks' 60-bit content hashes, the
    ids engines store (``rows_of`` maps them back to rows). ``store`` is what the engine's
    :meth:`Engine.load` returned for this version.
    """

    path: Path
    manifest: dict
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    langs: np.ndarray
    doc_ids: np.ndarray
    store: Any

    @property
    def ids(self) -> np.ndarray: ...

    def rows_of(self, ids: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Searcher(Protocol):
    """What retrieval needs from an opened engine. Rows are chunk positions in the index.

    ``lexical`` takes the question's text: each engine analyses it its own way (French and
    English analysers both, so names and cognates match passages in the other language).
    ``feedback`` rows are the top dense passages: terms they share join the query
    (pseudo-relevance feedback), up to ``feedback_terms``.

    An engine that fuses in one request (Qdrant) also has ``hybrid`` with the arguments of
    ``qa.retrieval.retrieve``; it is used in hybrid mode.
    """

    index: Stored

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]: ...

    def lexical(
        self, text: str, lang: str, depth: int, where: Where | None, feedback: Sequence[int] = (), feedback_terms: int = 0
    ) -> list[tuple[int, float]]: ...


@dataclass(frozen=True)
class Rows:
    """What a build hands an engine to write: the chunks in row order, their ids and
    vectors, and how their indexed text is made (``chunking.indexed_text``'s ``context``)."""

    chunks: Sequence[Chunk]
    ids: np.ndarray  # int64, one per chunk
    vectors: np.ndarray  # float32, one per chunk
    context: str = "section"


@dataclass(frozen=True)
class Written:
    """What an engine's write returns: the manifest's ``backend`` entry, other manifest
    fields it owns (``dense`` for FAISS), and what to do once the version is live (a
    server engine drops what the previous version used)."""

    backend: dict
    manifest: dict = field(default_factory=dict)
    after_switch: Callable[[], None] | None = None


class Engine(Protocol):
    """A search engine: writes its structures for an index version and opens them.

    Example:
        >>> engine = get_engine("faiss")
        >>> engine.options(None, None, None)
        {'type': 'faiss'}
    """

    name: str

    def options(self, url: str | None, collection: str | None, before: dict | None) -> dict:
        """The manifest's ``backend`` entry for a build (``before``: the live version's, when
        it used this engine); raises ``InputError`` for options this engine does not take."""
        ...

    def check(self, spec: dict) -> None:
        """Fail early, before any embedding, when the engine cannot be used as given."""
        ...

    def write(self, target: Path, spec: dict, rows: Rows, previous: Stored | None, fresh: set[str], live: dict) -> Written:
        """Write this engine's structures for a new version into ``target`` (the version's
        directory while it is built). ``previous`` is the version being updated (None for a
        full build), ``fresh`` the ids of documents added or changed since, ``live`` the live
        version's ``backend`` entry. A failure must leave the live version's structures usable."""
        ...

    def load(self, path: Path, manifest: dict, ids: np.ndarray) -> tuple[Any, list[str]]:
        """Read what :meth:`open` needs from a version directory and check it against the
        version's chunk ids: ``(store, problems)``. Unreadable files raise ``OSError``,
        ``ValueError`` or ``RuntimeError``; an engine that reads at open time returns None."""
        ...

    def open(self, index: Stored) -> Searcher:
        """A searcher over a loaded version; ``IndexMismatchError`` when its structures are
        missing or disagree with the index."""
        ...


def no_options(name: str, url: str | None, collection: str | None) -> dict:
    """The ``options`` of an engine that takes none."""
    if url or collection:
        raise InputError(f"--url and --collection are for --backend qdrant, not {name}")
    return {"type": name}


_ENGINES: dict[str, Engine] = {}
# The engines that come with qa, imported when first asked for (Qdrant's bindings are an
# optional install, and the default query path does not import them).
BUILTIN: Mapping[str, str] = {"faiss": "qa.engines.local", "qdrant-edge": "qa.engines.qdrant", "qdrant": "qa.engines.qdrant"}


def register(engine: Engine) -> Engine:
    """Make ``engine`` available under ``engine.name`` (for ``build_index(backend=...)``,
    ``qa index --backend`` and every index whose manifest names it)."""
    _ENGINES[engine.name] = engine
    return engine


def engine_names() -> list[str]:
    return list(dict.fromkeys([*BUILTIN, *_ENGINES]))


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``; ``InputError`` naming the known ones otherwise."""
    if name not in _ENGINES and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    try:
        return _ENGINES[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r}: use one of {', '.join(engine_names())}") from None
