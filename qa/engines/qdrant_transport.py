"""Qdrant's two transports for the Qdrant engines (``qa.engines.qdrant``): the same
requests to an embedded Qdrant Edge shard (``qdrant-edge-py``) or to a Qdrant server or
cluster through ``qdrant-client``. Both are optional installs: ``pip install 'qa[scale]'``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import IndexMismatchError, QAError
from .base import Where

DENSE, SPARSE = "dense", "bm25"
# HNSW (built by optimize() for segments above Qdrant's indexing threshold) and its search.
HNSW_M, HNSW_EF_CONSTRUCT, HNSW_EF = 32, 100, 256


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
            request = qe.QueryRequest(limit=2 * depth, prefetches=prefetches, query=qe.Fusion.Rrf(k=rrf_k), filter=flt, with_payload=False)
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
