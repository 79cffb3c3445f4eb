"""The Qdrant engines: the same queries on an embedded Qdrant Edge shard
(``qa index --backend qdrant-edge``) or on a Qdrant cluster (``--backend qdrant --url``).

One point per chunk, its id the chunk's 60-bit content hash (``Index.ids``):

- ``dense``: the chunk vector from our encoder (dot product of unit vectors);
- ``bm25``: a BM25 sparse vector computed here with Qdrant Edge's ``Bm25`` in the chunk's
  language (French: ``language="french"`` with ASCII folding, elision and Snowball
  stemming; English: ``"english"``), routed by chunk language into one field whose IDF
  Qdrant computes over the whole collection (the ``Idf`` modifier), as bm25s does;
- payload: what a citation needs (doc_id, offsets, spans, page, section, language, kind,
  title, text) plus the chunk id.

A question is one request: prefetch dense and BM25, fuse with RRF, filter by language and
document. Pseudo-relevance feedback (terms shared by the top dense passages) needs the
dense top first, so a hybrid question with feedback costs one small dense request before
the fused one.

The index directory keeps what answers need besides search (chunks, sentence vectors,
manifest). An Edge shard lives inside each index version (``qdrant/``): an update copies
the previous version's shard and applies only the changes, so a crash leaves the previous
version whole. A cluster collection is updated in place: new points are written before
the new version goes live (the live one ignores ids it does not know), removed ones are
deleted after.

The transports (Edge shard, qdrant-client) are in ``qa.engines.qdrant_transport``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..chunking import Chunk, indexed_text, strip_urls
from ..errors import IndexMismatchError, InputError, QAError
from .base import BM25_B, BM25_K1, Feedback, Hit, RowCache, Rows, Searcher, Stored, Where, Written, no_options, register, shared_terms
from .qdrant_transport import HNSW_EF, ClusterStore, EdgeStore, _import_edge, _reason, check

EDGE_DIR = "qdrant"
DEFAULT_COLLECTION = "qa"
# BM25 as bm25s scores it here (Lucene variant, base.BM25_K1 and BM25_B); avg_len is the
# corpus's, fixed when the store is created (as in Lucene) and kept by incremental updates.
UPSERT_BATCH = 256
__all__ = ["HNSW_EF", "ClusterStore", "EdgeStore", "QdrantBackend", "QdrantEngine", "SparseEncoder", "check", "write_store"]


class SparseEncoder:
    """BM25 sparse vectors from Qdrant Edge's ``Bm25``, one analyser per language."""

    def __init__(self, avg_len: float, k: float = BM25_K1, b: float = BM25_B) -> None:
        qe = _import_edge()
        self.avg_len, self.k, self.b = avg_len, k, b
        self.models = {
            "fr": qe.Bm25(qe.Bm25Config(k=k, b=b, avg_len=avg_len, language="french", ascii_folding=True)),
            "en": qe.Bm25(qe.Bm25Config(k=k, b=b, avg_len=avg_len, language="english")),
        }

    def settings(self) -> dict:
        return {"k": self.k, "b": self.b, "avg_len": self.avg_len, "fr": "french+ascii_folding", "en": "english"}

    def document(self, text: str, lang: str) -> tuple[list[int], list[float]]:
        vector = self.models[lang].embed_document(text)
        return list(vector.indices), list(vector.values)

    def terms(self, text: str, lang: str) -> list[int]:
        return list(self.models[lang].embed_query(text).indices)

    def query(self, text: str, extra: Sequence[int] = ()) -> list[int]:
        """Token ids of the question under both analysers (names and cognates then match
        passages in the other language), then ``extra`` ids."""
        ids: dict[int, None] = {}
        for lang in ("fr", "en"):
            ids.update(dict.fromkeys(self.terms(text, lang)))
        ids.update(dict.fromkeys(extra))
        return list(ids)


def average_length(chunks: Sequence[Chunk], context: str) -> float:
    """Mean number of analysed terms in what BM25 indexes (our analysers' count)."""
    from ..analysis import analyse

    if not chunks:
        return 1.0
    return max(1.0, float(np.mean([len(analyse(indexed_text(c, context), c.lang)) for c in chunks])))


# ---------------------------------------------------------------------------------------
# Writing a version's store


def payload(chunk: Chunk) -> dict:
    return {
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "lang": chunk.lang,
        "start": chunk.start,
        "end": chunk.end,
        "spans": [list(s) for s in chunk.spans],
        "page": chunk.page,
        "section": chunk.section,
        "kind": chunk.kind,
        "title": chunk.title,
        "text": chunk.text,
    }


def _cleanup(action: Callable[[object], object], argument: object, failed: str, fix: str) -> Callable[[], None]:
    def run() -> None:
        try:
            action(argument)
        except Exception as exc:  # network errors, server errors
            raise QAError(f"{failed} ({_reason(exc)}); {fix}") from exc

    return run


def write_store(version_dir: Path, spec: dict, rows: Rows, previous: Stored | None, fresh_docs: set[str], live: dict) -> Written:
    """Write the Qdrant store of a new version; return the manifest's ``backend`` entry and
    what to do once the version is live. ``live`` is the live version's backend entry.

    Edge: the previous version's shard is copied and updated (or a new one created).
    Cluster: an update writes into the live collection (points the live version does not
    know are ignored by it), and its removals wait until the new version is live; a full
    build (first build, ``--rebuild``, new encoder or settings, another backend before)
    writes a new collection ``<collection>-<version>`` and drops the one the previous
    version used only once the new version is live. A build that dies leaves the live
    version's store as it was.
    """
    chunks, ids, vectors, context = rows.chunks, rows.ids, rows.vectors, rows.context
    dim = vectors.shape[1]
    same_store = previous is not None and live.get("type") == spec["type"]
    if spec["type"] == "qdrant":
        same_store = same_store and (live.get("url"), live.get("collection")) == (spec["url"], spec["collection"])
    bm25 = dict(live["bm25"]) if same_store else SparseEncoder(average_length(chunks, context)).settings()
    sparse = SparseEncoder(bm25["avg_len"], bm25["k"], bm25["b"])
    new_ids = {int(i) for i in ids}
    after: Callable[[], None] = lambda: None  # noqa: E731
    if spec["type"] == "qdrant-edge":
        path = version_dir / EDGE_DIR
        if same_store:
            assert previous is not None
            shutil.copytree(previous.path / EDGE_DIR, path)
            store: EdgeStore | ClusterStore = EdgeStore.load(path)
            present = {int(i) for i in previous.ids}  # the copy holds exactly these
        else:
            store, present = EdgeStore.create(path, dim), set()
        gone = sorted(present - new_ids)
        store.delete(gone)  # a private copy: now
        entry = {**spec, "path": EDGE_DIR}
    else:
        if same_store:
            physical = live["physical"]
            store = ClusterStore.open(spec["url"], physical)
            present = store.ids()  # the collection itself: also what a failed build left there
            gone = sorted(present - new_ids)
            after = _cleanup(store.delete, gone, f"deleting {len(gone)} removed points failed", "the next `qa index` retries")
        else:
            physical = f"{spec['collection']}-{version_dir.name.removeprefix('.tmp-')}".lower()
            store, present, gone = ClusterStore.create(spec["url"], physical, dim), set(), []
            if live.get("type") == "qdrant" and live.get("url") == spec["url"] and live.get("physical"):
                old = live["physical"]
                after = _cleanup(
                    store.client.delete_collection, old, f"deleting the replaced collection {old!r} failed", "delete it by hand"
                )
        entry = {**spec, "physical": physical}
    try:
        todo = [row for row, chunk in enumerate(chunks) if int(ids[row]) not in present or chunk.doc_id in fresh_docs]
        for i in range(0, len(todo), UPSERT_BATCH):
            batch = []
            for row in todo[i : i + UPSERT_BATCH]:
                chunk = chunks[row]
                text = indexed_text(chunk, context)
                batch.append((int(ids[row]), np.asarray(vectors[row], dtype=np.float32), sparse.document(text, chunk.lang), payload(chunk)))
            store.upsert(batch)
        store.finish()
        if spec["type"] == "qdrant-edge" and store.count() != len(chunks):
            raise IndexMismatchError(f"the new Qdrant Edge shard holds {store.count()} points for {len(chunks)} chunks; run it again")
    except BaseException:
        if isinstance(store, ClusterStore) and not same_store:  # the collection this build started
            try:
                store.client.delete_collection(store.collection)
            except Exception:  # noqa: S110  (the build's own error is the one to report)
                pass
        raise
    finally:
        store.close()
    entry.update(bm25=bm25, points=len(chunks), upserted=len(todo), deleted=len(gone))
    return Written(backend=entry, after_switch=after)


# ---------------------------------------------------------------------------------------
# Searching


class QdrantBackend:
    """The :class:`qa.engines.base.Searcher` interface on a Qdrant store (Edge or cluster)."""

    def __init__(self, index: Stored, store: EdgeStore | ClusterStore) -> None:
        settings = index.manifest["backend"]["bm25"]
        self.index = index
        self.store = store
        self.sparse = SparseEncoder(settings["avg_len"], settings["k"], settings["b"])
        self._terms: RowCache[set[int]] = RowCache()

    @classmethod
    def open(cls, index: Stored) -> QdrantBackend:
        spec = index.manifest["backend"]
        if spec["type"] == "qdrant-edge":
            store: EdgeStore | ClusterStore = EdgeStore.load(index.path / spec["path"])
            if store.count() != len(index.ids):
                raise IndexMismatchError(
                    f"the Qdrant Edge shard in {index.path} holds {store.count()} points for {len(index.ids)} chunks; "
                    "run `qa index --rebuild`"
                )
        else:
            store = ClusterStore.open(spec["url"], spec["physical"])
        return cls(index, store)

    def _rows(self, found: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Point ids to index rows; ids the index does not know (another version's) are dropped."""
        if not found:
            return []
        rows = self.index.rows_of(np.array([pid for pid, _ in found], dtype=np.int64))
        return [(int(r), s) for r, (_, s) in zip(rows, found) if r >= 0]

    def dense(self, query_vector: np.ndarray, depth: int, where: Where | None) -> list[tuple[int, float]]:
        if depth <= 0:
            return []
        return self._rows(self.store.search(depth, where, vector=query_vector))

    def lexical(
        self, text: str, lang: str, depth: int, where: Where | None, feedback: Sequence[int] = (), feedback_terms: int = 0
    ) -> list[tuple[int, float]]:
        if depth <= 0:
            return []
        extra = self.feedback_terms(feedback, feedback_terms) if feedback and feedback_terms > 0 else []
        return self._rows(self.store.search(depth, where, sparse=self.sparse.query(text, extra)))

    def hybrid(
        self,
        query_vector: np.ndarray,
        text: str,
        lang: str,
        *,
        depth: int,
        rrf_k: int,
        weights: Mapping[str, float] | None,
        where: Where | None,
        feedback: Feedback | None,
    ) -> list[Hit]:
        """Dense and BM25 prefetched and fused by RRF in one request, for equal weights.

        Qdrant's RRF counts ranks from 0 (``1 / (k + rank0)``), ours from 1, so ``k + 1`` is
        sent, and the scores are scaled by the common weight: they are then those of
        :func:`qa.retrieval.rrf`. (Qdrant weighs ranks, not scores, so unequal weights go
        through :func:`qa.retrieval.retrieve`'s two requests and our fusion instead.)
        """
        if depth <= 0:
            return []
        weight = (weights or {}).get("dense", 1.0)
        if weight != (weights or {}).get("bm25", 1.0):
            raise ValueError("hybrid() fuses equal weights only; retrieve() fuses unequal ones itself")
        extra: list[int] = []
        if feedback is not None and feedback.terms > 0:
            top = self.dense(query_vector, feedback.docs, where)
            extra = self.feedback_terms([r for r, _ in top], feedback.terms)
        found = self.store.search(depth, where, vector=query_vector, sparse=self.sparse.query(text, extra), rrf_k=rrf_k + 1)
        # Qdrant returns every fused point (limit 2 * depth): ties are ordered here, by row
        # as qa.retrieval.rrf's callers do, then cut, so the same question gets the same list.
        ordered = sorted(self._rows(found), key=lambda item: (-item[1], item[0]))[:depth]
        return [Hit(row=row, score=score * weight) for row, score in ordered]

    def feedback_terms(self, rows: Sequence[int], n: int) -> list[int]:
        """Token ids shared by at least two of ``rows`` (each in its language's analyser),
        most shared first, then by id (a stable order). Unlike the local backend's terms,
        ids carry no length, so short terms are not left out (the analysers drop stopwords)."""

        def terms(row: int) -> set[int]:
            chunk = self.index.chunks[row]
            return set(self.sparse.terms(strip_urls(chunk.text), chunk.lang))

        return shared_terms((self._terms.get(r, lambda r=r: terms(r)) for r in rows), n)


# ---------------------------------------------------------------------------------------
# The engines


class QdrantEngine:
    """``qdrant-edge`` (a shard inside each version) or ``qdrant`` (a collection on a
    server or cluster at ``url``): one writer, one searcher, two transports."""

    def __init__(self, name: str) -> None:
        self.name = name

    def options(self, url: str | None, collection: str | None, before: dict | None) -> dict:
        if self.name == "qdrant-edge":
            return no_options(self.name, url, collection)
        if before is not None:  # an update keeps the live version's cluster and collection
            url, collection = url or before["url"], collection or before["collection"]
        if not url:
            raise InputError("the qdrant backend needs the cluster's address: --url http://HOST:6333")
        return {"type": self.name, "url": url, "collection": collection or DEFAULT_COLLECTION}

    def check(self, spec: dict) -> None:
        check(spec)

    def write(self, target: Path, spec: dict, rows: Rows, previous: Stored | None, fresh: set[str], live: dict) -> Written:
        return write_store(target, spec, rows, previous, fresh, live)

    def load(self, path: Path, manifest: dict, ids: np.ndarray) -> tuple[None, list[str]]:
        return None, []  # the store is opened (and its point count checked) by open()

    def open(self, index: Stored) -> Searcher:
        return QdrantBackend.open(index)


register(QdrantEngine("qdrant-edge"))
register(QdrantEngine("qdrant"))
