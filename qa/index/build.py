"""Building an index version from a corpus, as a short sequence of named steps: read the
previous version, choose the engine, plan what changed, chunk, embed, write the version
(``write.write_version``, which has the engine write its structures) and switch to it.

Builds are incremental: unchanged documents keep their chunks, and chunks whose content
hash is already indexed keep their vectors; what the previous version does not hold comes
from the embedding cache, or is embedded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..chunking import Chunk, chunk_document, indexed_text, strip_urls
from ..config import DEFAULT_MODEL, ChunkingConfig
from ..corpus import Document, load_corpus
from ..embeddings import EmbeddingCache, embed
from ..encoders import Encoder, load_encoder
from ..engines import BM25_B, BM25_K1, DEFAULT_ENGINE, get_engine
from ..errors import CorpusError, IndexMismatchError
from ..locking import write_lock
from ..version import __version__
from .load import FORMAT_VERSION, Index, content_id, index_exists, live_manifest, live_path
from .write import write_version

ANALYSER = {"fr": "elision+stopwords+accent-folding+snowball-french", "en": "stopwords-en-plus+snowball-english", "version": 2}
# Bump when cleaning, chunking or what is indexed changes: an older index then rebuilds.
PIPELINE_VERSION = 4  # 3: vocabulary.txt, e5 default; 4: wrapped text told from one paragraph per line


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
    previous, live = _read_previous(index_dir, rebuild, log)
    before = live.get("backend")
    spec = backend_spec(backend, url, collection, before)
    get_engine(spec["type"]).check(spec)  # before any embedding
    if chunking is None:
        kept = live.get("settings", {}).get("chunking")
        chunking = ChunkingConfig(**kept) if kept else ChunkingConfig()
    model = model or live.get("encoder", {}).get("name", DEFAULT_MODEL)
    encoder = encoder or load_encoder(model)
    settings = {"chunking": asdict(chunking), "analyser": ANALYSER, "bm25": {"k1": BM25_K1, "b": BM25_B}, "pipeline": PIPELINE_VERSION}
    previous = _comparable(previous, encoder, settings, log)

    plan = _plan(documents, previous, spec, index_dir)
    if plan.up_to_date:
        assert previous is not None
        return BuildReport(None, len(documents), len(previous.chunks), [], [], [], 0, len(previous.chunks), time.perf_counter() - t0, False)
    chunks, doc_counts = _chunk(documents, plan, previous, chunking, progress)
    if not chunks:
        raise CorpusError(f"no text to index in {corpus_dir}: every document came out empty after cleaning")
    vectors = _embed(chunks, plan, previous, encoder, chunking, index_dir, progress)
    manifest = _manifest(corpus_dir, documents, doc_counts, chunks, model, encoder, settings, vectors)
    path = write_version(
        index_dir,
        manifest,
        chunks,
        vectors.chunks,
        vectors.sentences,
        chunking.context,
        backend=spec,
        previous=previous,
        live_backend=before,
        fresh=set(plan.added) | set(plan.changed),
        before_switch=before_switch,
    )
    return BuildReport(
        path=path,
        documents=len(documents),
        chunks=len(chunks),
        added=plan.added if previous is not None else sorted(d.doc_id for d in documents),
        changed=plan.changed,
        removed=plan.removed,
        embedded_chunks=vectors.todo,
        reused_chunks=len(chunks) - vectors.todo,
        seconds=time.perf_counter() - t0,
        rebuilt=previous is None,
        embedded_texts=vectors.embedded,
        cached_texts=vectors.cached,
    )


def _read_previous(index_dir: Path, rebuild: bool, log: Callable[[str], None]) -> tuple[Index | None, dict]:
    """The version to update (None for a full build) and the live manifest. What a build is
    not given is kept from the live version, read even when it is not loaded (--rebuild,
    or damaged): its encoder, chunking settings, engine, cluster, collection."""
    previous: Index | None = None
    if not rebuild and index_exists(index_dir):
        try:
            previous = Index.load(index_dir, warn=log)  # a damaged live version: the newest intact one
        except IndexMismatchError as exc:
            log(f"previous index unusable ({exc}); rebuilding")
    live = previous.manifest if previous is not None else (live_manifest(index_dir) or {})
    return previous, live


def _comparable(previous: Index | None, encoder: Encoder, settings: dict, log: Callable[[str], None]) -> Index | None:
    """The previous version, unless another encoder or other settings made it: then None."""
    if previous is None:
        return None
    if previous.manifest["encoder"]["id"] != encoder.id:
        log(f"encoder changed ({previous.manifest['encoder']['id']} -> {encoder.id}): rebuilding")
        return None
    if previous.manifest["settings"] != settings:
        log("chunking, analyser or BM25 settings changed: rebuilding")
        return None
    return previous


@dataclass(frozen=True)
class Plan:
    """What changed since the previous version (document ids)."""

    old_docs: dict  # the previous manifest's documents
    added: list[str]
    changed: list[str]
    removed: list[str]
    up_to_date: bool  # nothing to write: same documents, same engine, an intact live version


def _plan(documents: list[Document], previous: Index | None, spec: dict, index_dir: Path) -> Plan:
    old_docs = previous.manifest["documents"] if previous else {}
    new_docs = {d.doc_id: d for d in documents}
    added = sorted(set(new_docs) - set(old_docs))
    removed = sorted(set(old_docs) - set(new_docs))
    changed = sorted(i for i in set(new_docs) & set(old_docs) if _doc_changed(old_docs[i], new_docs[i]))
    same_backend = previous is not None and all(previous.manifest["backend"].get(key) == value for key, value in spec.items())
    live_is_intact = previous is not None and previous.path == live_path(index_dir)
    up_to_date = same_backend and live_is_intact and not (added or removed or changed)
    return Plan(old_docs, added, changed, removed, up_to_date)


def _chunk(
    documents: list[Document], plan: Plan, previous: Index | None, chunking: ChunkingConfig, progress: bool
) -> tuple[list[Chunk], dict[str, int]]:
    """Chunks: those of unchanged documents reused, the others cut."""
    old_by_doc: dict[str, list[int]] = {}
    if previous is not None:
        for row, doc_id in enumerate(previous.doc_ids.tolist()):
            old_by_doc.setdefault(doc_id, []).append(row)
    chunks: list[Chunk] = []
    doc_counts: dict[str, int] = {}
    for doc in _progress(documents, "chunking", progress):
        if previous is not None and doc.doc_id in plan.old_docs and doc.doc_id not in plan.changed:
            doc_chunks = [previous.chunks[r] for r in old_by_doc.get(doc.doc_id, [])]
        else:
            doc_chunks = chunk_document(doc, chunking)
        doc_counts[doc.doc_id] = len(doc_chunks)
        chunks.extend(doc_chunks)
    return chunks, doc_counts


@dataclass(frozen=True)
class Vectors:
    chunks: np.ndarray  # float32, one per chunk
    sentences: np.ndarray  # float16, the chunks' sentences in order
    todo: int  # chunks the previous version did not hold
    embedded: int  # texts run through the encoder
    cached: int  # texts read from the embedding cache


def _embed(
    chunks: list[Chunk], plan: Plan, previous: Index | None, encoder: Encoder, chunking: ChunkingConfig, index_dir: Path, progress: bool
) -> Vectors:
    """Vectors: reused by content hash from the previous version, else from the embedding
    cache, else embedded."""
    dim = encoder.dim
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    n_sent = sum(len(c.sentences) for c in chunks)
    sent_vectors = np.zeros((n_sent, dim), dtype=np.float16)
    offsets = np.concatenate([[0], np.cumsum([len(c.sentences) for c in chunks])]).astype(np.int64)
    todo: list[int] = []
    old_rows = previous.rows_of(np.array([content_id(c.id) for c in chunks], dtype=np.int64)) if previous is not None else None
    for row in range(len(chunks)):
        old_row = int(old_rows[row]) if old_rows is not None else -1
        if old_row >= 0 and chunks[row].doc_id in plan.changed:
            # A changed document keeps the vectors of chunks whose text is the same, unless
            # what was embedded with them (heading, title) changed too.
            old = previous.chunks[old_row]  # type: ignore[union-attr]
            if (old.section, old.title) != (chunks[row].section, chunks[row].title):
                old_row = -1
        if old_row >= 0:  # same 60-bit content hash: the same chunk
            vectors[row] = previous.vectors[old_row]  # type: ignore[union-attr]
            sent_vectors[offsets[row] : offsets[row + 1]] = previous.sentence_rows(old_row)  # type: ignore[union-attr]
        else:
            todo.append(row)
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
    cache.save()  # before the version is written: a build killed later re-embeds nothing
    return Vectors(vectors, sent_vectors, len(todo), embedded, len(texts) + len(sentences) - embedded)


def _manifest(
    corpus_dir: Path,
    documents: list[Document],
    doc_counts: dict[str, int],
    chunks: list[Chunk],
    model: str,
    encoder: Encoder,
    settings: dict,
    vectors: Vectors,
) -> dict:
    """The new version's manifest, without what writing adds (rows, engine)."""
    return {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": {"name": model, "id": encoder.id, "dim": encoder.dim},
        "embedding": _embedding_record(encoder, vectors.embedded, vectors.cached),
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
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": int(sum(len(c.sentences) for c in chunks))},
    }


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


def backend_spec(backend: str | None, url: str | None, collection: str | None, before: dict | None) -> dict:
    """The manifest's ``backend`` entry for a build (without what the build adds): the engine
    named, else the live version's (whose options it then keeps), else the default."""
    kept = backend is None and before is not None
    name = before["type"] if kept else (backend or DEFAULT_ENGINE)  # type: ignore[index]
    return get_engine(name).options(url, collection, before if kept else None)


def _progress(iterable, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, unit="doc")
