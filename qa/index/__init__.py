"""The index: a directory of versions, each a complete, self-checking set of files.

- ``load``: reading a version (:class:`Index`, the chunk store, the live pointer, the
  fallback to an intact version);
- ``write``: writing a version and switching ``CURRENT`` to it (the engine, named in the
  manifest, writes its own structures: ``qa.engines``);
- ``build``: building or updating the version of a corpus (:func:`build_index`).

The index never names a search engine: it asks ``qa.engines``' registry for the one its
manifest names. A new engine goes in ``qa/engines/``.
"""

from .build import ANALYSER, PIPELINE_VERSION, BuildReport, backend_spec, build_index
from .load import FORMAT_VERSION, ID_FIELD, ROW_DTYPE, ChunkStore, Index, content_id, index_exists, live_manifest, resolve_version
from .write import KEEP_VERSIONS, write_version, write_vocabulary

__all__ = [
    "ANALYSER",
    "FORMAT_VERSION",
    "ID_FIELD",
    "KEEP_VERSIONS",
    "PIPELINE_VERSION",
    "ROW_DTYPE",
    "BuildReport",
    "ChunkStore",
    "Index",
    "backend_spec",
    "build_index",
    "content_id",
    "index_exists",
    "live_manifest",
    "resolve_version",
    "write_version",
    "write_vocabulary",
]
