"""Qdrant as the retrieval engine: the same queries on an embedded Qdrant Edge shard
(``qa index --backend qdrant-edge``) or on a Qdrant cluster (``--backend qdrant --url``).

One point per chunk, its id the chunk's 60-bit content hash (the FAISS id):

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
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .chunking import Chunk, indexed_text, strip_urls
from .errors import IndexMismatchError, QAError
from .index import Index
from .retrieval import Feedback, Hit, RowCache, Where, shared_terms

BACKENDS = ("faiss", "qdrant-edge", "qdrant")
EDGE_DIR = "qdrant"
DENSE, SPARSE = "dense", "bm25"
DEFAULT_COLLECTION = "qa"
# BM25 as bm25s scores it here (Lucene variant, k1 1.5, b 0.75); avg_len is the corpus's,
# fixed when the store is created (as in Lucene) and kept by incremental updates.
BM25_K, BM25_B = 1.5, 0.75
# HNSW (built by optimize() for segments above Qdrant's indexing threshold) and its search.
HNSW_M, HNSW_EF_CONSTRUCT, HNSW_EF = 32, 100, 256
UPSERT_BATCH = 256


def _reason(exc: BaseException) -> str:
    """An exception on one line: its type and the first line of its message."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _import_edge():  # type: ignore[no-untyped-def]
    try:
        import qdrant_edge
    except ImportError:
        raise QAError("the Qdrant backends need qdrant-edge-py: pip install 'qa[scale]'") from None
    return qdrant_edge


class SparseEncoder:
    """BM25 sparse vectors from Qdrant Edge's ``Bm25``, one analyser per language."""

    def __init__(self, avg_len: float, k: float = BM25_K, b: float = BM25_B) -> None:
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
    from .analysis import analyse

    if not chunks:
        return 1.0
    return max(1.0, float(np.mean([len(analyse(indexed_text(c, context), c.lang)) for c in chunks])))


# ---------------------------------------------------------------------------------------
# Transports: the same requests to an Edge shard or through qdrant-client.


class _Store:
    """What both transports share: one search entry point; each builds its own request."""

    def search(
        self,
        depth: int,
        where: Where | None,
        vector: np.ndarray | None = None,
        sparse: list[int] | None = None,
        rrf_k: int | None = None,
    ) -> list[tuple[int, float]]:
        """(point id, score): dense, BM25, or (with ``rrf_k``) both fused by RRF, in one request."""
        queries: list[tuple[str, list]] = []
        if vector is not None:
            queries.append((DENSE, vector.astype(np.float32).tolist()))
        if sparse:
            queries.append((SPARSE, list(sparse)))
        if not queries:
            return []
        return self._query(depth, self._filter(where), queries, rrf_k)

    def _filter(self, where: Where | None):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def _query(self, depth: int, flt, queries: list[tuple[str, list]], rrf_k: int | None) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
        raise NotImplementedError


class EdgeStore(_Store):
    """A Qdrant Edge shard on local disk (no WAL: each version is written once, flushed,
    then only read, so any number of processes may open it)."""

    def __init__(self, shard) -> None:  # type: ignore[no-untyped-def]
        self.qe = _import_edge()
        self.shard = shard

    @classmethod
    def create(cls, path: Path, dim: int) -> EdgeStore:
        qe = _import_edge()
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Dot)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000),
            wal_enabled=False,
        )
        store = cls(qe.EdgeShard.create(str(path), config))
        for name in ("lang", "doc_id"):
            store.shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        return store

    @classmethod
    def load(cls, path: Path) -> EdgeStore:
        qe = _import_edge()
        try:
            return cls(qe.EdgeShard.load(str(path)))
        except Exception as exc:  # the bindings raise plain exceptions
            message = f"Qdrant Edge shard unreadable at {path} ({_reason(exc)}); rebuild the index with `qa index --rebuild`"
            raise IndexMismatchError(message) from exc

    def upsert(self, points: list[tuple[int, np.ndarray, tuple[list[int], list[float]], dict]]) -> None:
        qe = self.qe
        batch = [
            qe.Point(id=pid, vector={DENSE: vec.tolist(), SPARSE: qe.SparseVector(*sparse)}, payload=payload)
            for pid, vec, sparse, payload in points
        ]
        self.shard.update(qe.UpdateOperation.upsert_points(batch))

    def delete(self, ids: list[int]) -> None:
        if ids:
            self.shard.update(self.qe.UpdateOperation.delete_points(ids))

    def count(self) -> int:
        return int(self.shard.info().points_count)

    def finish(self) -> None:
        self.shard.optimize()  # builds the HNSW graph; without it search is brute force
        self.shard.flush()

    def close(self) -> None:
        self.shard.close()

    def _filter(self, where: Where | None):  # type: ignore[no-untyped-def]
        qe = self.qe
        if where is None or where.everything:
            return None
        must = [qe.FieldCondition(key="lang", match=qe.MatchValue(where.lang))] if where.lang else []
        if where.doc:
            must.append(qe.FieldCondition(key="doc_id", match=qe.MatchValue(where.doc)))
        return qe.Filter(must=must)

    def _query(self, depth: int, flt, queries: list[tuple[str, list]], rrf_k: int | None) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
        qe = self.qe
        params = qe.SearchParams(hnsw_ef=max(HNSW_EF, depth))
        nearest = [
            qe.Query.Nearest(values if using == DENSE else qe.SparseVector(values, [1.0] * len(values)), using=using)
            for using, values in queries
        ]
        if rrf_k is None:
            request = qe.QueryRequest(limit=depth, query=nearest[0], filter=flt, params=params, with_payload=False)
        else:
            prefetches = [qe.Prefetch(limit=depth, query=q, filter=flt, params=params) for q in nearest]
            # Every fused point (two lists of depth): the caller orders ties and cuts to depth.
            request = qe.QueryRequest(
                limit=2 * depth, prefetches=prefetches, query=qe.Fusion.Rrf(k=rrf_k), filter=flt, with_payload=False
            )
        return [(int(p.id), float(p.score)) for p in self.shard.query(request)]


_CLIENTS: dict[tuple[str, str | None], object] = {}


def connect(url: str):  # type: ignore[no-untyped-def]
    """One qdrant-client per URL and process (``:memory:`` is then one store per process)."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise QAError("the Qdrant cluster backend needs qdrant-client: pip install 'qa[scale]'") from None
    api_key = os.environ.get("QDRANT_API_KEY") or None
    key = (url, api_key)
    if key not in _CLIENTS:
        if url == ":memory:":
            _CLIENTS[key] = QdrantClient(location=":memory:")
        else:  # check() reports an unreachable server in one line; no version warning first
            _CLIENTS[key] = QdrantClient(url=url, api_key=api_key, check_compatibility=False)
    return _CLIENTS[key]


def check(spec: dict) -> None:
    """Fail early, before any embedding, when the backend cannot be used as given."""
    _import_edge()  # BM25 sparse vectors come from Qdrant Edge's Bm25 for both transports
    if spec["type"] == "qdrant":
        client = connect(spec["url"])
        try:
            client.get_collections()
        except Exception as exc:  # connection refused, bad key, not a Qdrant, ...
            raise QAError(
                f"cannot reach Qdrant at {spec['url']} ({_reason(exc)}); "
                "check the address given to `qa index --backend qdrant --url` and QDRANT_API_KEY"
            ) from exc


class ClusterStore(_Store):
    """A collection on a Qdrant server or cluster, through qdrant-client."""

    def __init__(self, client, collection: str) -> None:  # type: ignore[no-untyped-def]
        from qdrant_client import models

        self.m = models
        self.client = client
        self.collection = collection

    @classmethod
    def open(cls, url: str, collection: str) -> ClusterStore:
        check({"type": "qdrant", "url": url})
        store = cls(connect(url), collection)
        if not store.client.collection_exists(collection):
            raise IndexMismatchError(f"no collection {collection!r} at {url} (deleted?); rebuild the index with `qa index --rebuild`")
        return store

    @classmethod
    def create(cls, url: str, collection: str, dim: int) -> ClusterStore:
        store = cls(connect(url), collection)
        m = store.m
        if store.client.collection_exists(collection):  # never replace a collection someone may be using
            raise QAError(f"a collection {collection!r} already exists at {url}; remove it or give another --collection")
        store.client.create_collection(
            collection,
            vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.DOT)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            hnsw_config=m.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
        )
        for name in ("lang", "doc_id"):
            store.client.create_payload_index(collection, name, m.PayloadSchemaType.KEYWORD)
        return store

    def upsert(self, points: list[tuple[int, np.ndarray, tuple[list[int], list[float]], dict]]) -> None:
        m = self.m
        batch = [
            m.PointStruct(
                id=pid,
                vector={DENSE: vec.tolist(), SPARSE: m.SparseVector(indices=sparse[0], values=sparse[1])},
                payload=payload,
            )
            for pid, vec, sparse, payload in points
        ]
        self.client.upsert(self.collection, points=batch, wait=True)

    def delete(self, ids: list[int]) -> None:
        if ids:
            self.client.delete(self.collection, points_selector=self.m.PointIdsList(points=ids), wait=True)

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def ids(self) -> set[int]:
        """Every point id in the collection (scrolled, without payloads or vectors)."""
        found: set[int] = set()
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, limit=10_000, offset=offset, with_payload=False, with_vectors=False)
            found.update(int(p.id) for p in points)
            if offset is None:
                return found

    def finish(self) -> None:
        pass  # the server optimizes in the background

    def close(self) -> None:
        pass  # the client is shared by the process (see connect)

    def _filter(self, where: Where | None):  # type: ignore[no-untyped-def]
        m = self.m
        if where is None or where.everything:
            return None
        must = [m.FieldCondition(key="lang", match=m.MatchValue(value=where.lang))] if where.lang else []
        if where.doc:
            must.append(m.FieldCondition(key="doc_id", match=m.MatchValue(value=where.doc)))
        return m.Filter(must=must)

    def _query(self, depth: int, flt, queries: list[tuple[str, list]], rrf_k: int | None) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
        m = self.m
        params = m.SearchParams(hnsw_ef=max(HNSW_EF, depth))
        nearest = [
            (values if using == DENSE else m.SparseVector(indices=values, values=[1.0] * len(values)), using) for using, values in queries
        ]
        if rrf_k is None:
            query, using = nearest[0]
            result = self.client.query_points(
                self.collection, query=query, using=using, limit=depth, query_filter=flt, search_params=params, with_payload=False
            )
        else:
            prefetch = [m.Prefetch(query=q, using=u, limit=depth, filter=flt, params=params) for q, u in nearest]
            result = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=rrf_k)),
                limit=2 * depth,
                query_filter=flt,
                with_payload=False,
            )
        return [(int(p.id), float(p.score)) for p in result.points]


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


def write_store(
    version_dir: Path,
    spec: dict,
    chunks: Sequence[Chunk],
    ids: np.ndarray,
    vectors: np.ndarray,
    context: str,
    previous: Index | None,
    fresh_docs: set[str],
    live: dict,
) -> tuple[dict, Callable[[], None]]:
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
            present = {int(i) for i in previous.rows["faiss_id"]}  # the copy holds exactly these
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
    return entry, after


# ---------------------------------------------------------------------------------------
# Searching


class QdrantBackend:
    """The :class:`qa.retrieval.Backend` interface on a Qdrant store (Edge or cluster)."""

    def __init__(self, index: Index, store: EdgeStore | ClusterStore) -> None:
        settings = index.manifest["backend"]["bm25"]
        self.index = index
        self.store = store
        self.sparse = SparseEncoder(settings["avg_len"], settings["k"], settings["b"])
        self._terms: RowCache[set[int]] = RowCache()

    @classmethod
    def open(cls, index: Index) -> QdrantBackend:
        spec = index.manifest["backend"]
        if spec["type"] == "qdrant-edge":
            store: EdgeStore | ClusterStore = EdgeStore.load(index.path / spec["path"])
            if store.count() != len(index.rows):
                raise IndexMismatchError(
                    f"the Qdrant Edge shard in {index.path} holds {store.count()} points for {len(index.rows)} chunks; "
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
