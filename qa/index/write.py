"""Writing an index version: its files into a temporary directory, the engine's
structures beside them, then a rename into ``versions/`` and only then the switch of
``CURRENT``. A crash at any moment leaves the previous version live.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..analysis import LANGUAGES, analyse
from ..chunking import Chunk, indexed_text
from ..corpus import timestamped_name
from ..engines import DEFAULT_ENGINE, Rows, Stored, get_engine
from ..errors import QAError
from ..locking import remove_unused
from .load import ID_FIELD, ROW_DTYPE, content_id

KEEP_VERSIONS = 3


def write_version(
    index_dir: Path,
    manifest: dict,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    context: str = "section",
    backend: dict | None = None,
    previous: Stored | None = None,
    fresh: set[str] | None = None,
    live_backend: dict | None = None,
    before_switch: Callable[[Path], None] | None = None,
) -> Path:
    """Write a complete version next to the live one, then switch ``CURRENT`` to it.

    ``backend`` is the manifest's engine entry (the default engine when not given): that
    engine writes its structures into the version. ``previous`` and ``fresh`` (ids of
    added or changed documents) let an engine update its structures rather than rewrite
    them; ``live_backend`` (the live version's, when ``previous`` is not used) tells what
    a full build replaces."""
    backend = backend or {"type": DEFAULT_ENGINE}
    engine = get_engine(backend["type"])
    after_switch = None
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
                rows[i] = (content_id(chunk.id), lang_code[chunk.lang], doc_code[chunk.doc_id], len(chunk.sentences))
        np.save(tmp / "chunks.offsets.npy", offsets, allow_pickle=False)
        np.save(tmp / "rows.npy", rows, allow_pickle=False)
        manifest["rows"] = {"langs": langs, "docs": docs}
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        np.save(tmp / "sentences.npy", sentence_vectors, allow_pickle=False)
        write_vocabulary(tmp / "vocabulary.txt", chunks, context)
        written = engine.write(tmp, backend, Rows(chunks, rows[ID_FIELD], vectors, context), previous, fresh or set(), live_backend or {})
        manifest["backend"] = written.backend
        manifest.update(written.manifest)
        after_switch = written.after_switch
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
