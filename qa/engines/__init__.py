"""Search engines, one layer beneath the index: one module each, behind one protocol.

- ``base``: the :class:`Engine` protocol (write a version's structures, open them to
  search), the :class:`Searcher` retrieval uses, the registry by name, and the types they
  share (:class:`Where`, :class:`Hit`, :class:`Feedback`);
- ``local``: FAISS + bm25s files in each version (``faiss``, the default);
- ``qdrant`` (with ``qdrant_transport``): an embedded Qdrant Edge shard (``qdrant-edge``)
  or a Qdrant cluster (``qdrant``).

A new engine goes in a new module here that ends with ``register(MyEngine())`` (and a line
in ``BUILTIN`` when it ships with qa); ``qa.index`` and ``qa.retrieval`` need no change.
"""

from .base import (
    BM25_B,
    BM25_K1,
    BUILTIN,
    DEFAULT_ENGINE,
    Engine,
    Feedback,
    Hit,
    RowCache,
    Rows,
    Searcher,
    Stored,
    Where,
    Written,
    engine_names,
    get_engine,
    no_options,
    register,
    shared_terms,
)

__all__ = [
    "BM25_B",
    "BM25_K1",
    "BUILTIN",
    "DEFAULT_ENGINE",
    "Engine",
    "Feedback",
    "Hit",
    "RowCache",
    "Rows",
    "Searcher",
    "Stored",
    "Where",
    "Written",
    "engine_names",
    "get_engine",
    "no_options",
    "register",
    "shared_terms",
]
