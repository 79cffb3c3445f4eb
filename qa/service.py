"""A long-running service over one corpus and its index: answers questions from many
threads while documents are added or removed.

Readers take the current :class:`Assistant` reference once per question; an update builds
a new index version, loads it, and swaps the reference under a lock. A question in flight
therefore sees the old index or the new one, never a mix.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .answer import Answer, Assistant
from .config import RetrievalConfig, load_config
from .corpus import FORMATS, Removed, UnreadableDocument, find_removed, put_back, read_document, removed_documents, set_aside
from .errors import CorpusError, InputError
from .index import BuildReport, build_index, index_exists

DEFAULT_MAX_UPLOAD_MB = 20.0


class Library:
    """The corpus, its index and the live assistant.

    Example:
        >>> library = Library("corpus", "index")
        >>> library.ask("Quel pays a acheté des drones Bayraktar ?").citations[0].doc_id
        'ijd-elargissement-balkans-securite'
    """

    def __init__(
        self,
        corpus_dir: str | Path = "corpus",
        index_dir: str | Path = "index",
        *,
        config: RetrievalConfig | None = None,
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
        log: Callable[[str], None] = print,
    ) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.index_dir = Path(index_dir)
        self.config = config or load_config().retrieval
        self.max_upload_mb = max_upload_mb
        self.log = log
        self._write_lock = threading.Lock()  # one index update at a time
        if not index_exists(self.index_dir):
            log(f"no index at {self.index_dir}: building it from {self.corpus_dir}")
            log(build_index(self.corpus_dir, self.index_dir, progress=False, log=log).summary())
        self._assistant = Assistant.open(self.index_dir, config=self.config)

    @property
    def assistant(self) -> Assistant:
        return self._assistant

    def ask(self, question: str, **options: object) -> Answer:
        return self._assistant.ask(question, **options)  # type: ignore[arg-type]

    def documents(self) -> dict[str, dict]:
        return self._assistant.documents

    def raw_text(self, doc_id: str) -> str:
        """The raw text of an indexed document (what citation offsets point into)."""
        meta = self.documents().get(doc_id)
        if meta is None:
            raise InputError(f"unknown document {doc_id!r}")
        return read_document(self.corpus_dir / meta["path"], self.corpus_dir).raw

    def add_document(self, path: str | Path, filename: str | None = None) -> BuildReport:
        """Copy an uploaded file into the corpus and update the index incrementally.

        Raises:
            InputError: unsupported type, too large, unreadable, or a name clash with a
                different document; the corpus and the index are then unchanged.
        """
        path = Path(path)
        name = Path(filename or path.name).name
        suffix = Path(name).suffix.lower()
        if suffix not in FORMATS:
            raise InputError(f"{name}: unsupported type '{suffix or '(none)'}'; upload .txt, .md, .html or .pdf")
        size_mb = path.stat().st_size / 1e6
        if size_mb > self.max_upload_mb:
            raise InputError(f"{name}: {size_mb:.1f} MB is over the {self.max_upload_mb:g} MB upload limit (raise it with --max-upload-mb)")
        if (self.corpus_dir / name).exists():
            raise InputError(f"{name}: a file of that name is already in the corpus; remove that document first or rename the file")
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / name
            shutil.copyfile(path, probe)
            try:
                read_document(probe, Path(tmp))
            except UnreadableDocument as exc:
                raise InputError(f"{name}: {exc}") from exc
        with self._write_lock:
            target = self.corpus_dir / name
            if target.exists():
                raise InputError(f"{name}: a file of that name is already in the corpus; remove that document first or rename the file")
            shutil.copyfile(path, target)
            try:
                return self._rebuild()
            except Exception:
                target.unlink(missing_ok=True)
                raise

    def remove_document(self, doc_id: str) -> BuildReport:
        """Take a document out of the index; its file moves to ``corpus/.removed/`` (see
        :meth:`removed`, :meth:`restore`), never deleted.

        Raises:
            InputError: unknown document; the corpus and the index are then unchanged.
        """
        with self._write_lock:
            meta = self.documents().get(doc_id)
            if meta is None:
                raise InputError(f"unknown document {doc_id!r}")
            entry = set_aside(self.corpus_dir, meta["path"], doc_id, meta.get("title", ""))
            try:
                return self._rebuild()
            except Exception:
                put_back(self.corpus_dir, entry)
                raise

    def removed(self) -> list[Removed]:
        """Documents removed and kept under ``corpus/.removed/``, newest first."""
        return removed_documents(self.corpus_dir)

    def restore(self, key: str) -> BuildReport:
        """Put a removed document back (by removal id, or the newest removal of a document
        id) and index it again.

        Raises:
            InputError: nothing removed under that name, or a file of that name is in the
                corpus again; the corpus and the index are then unchanged.
        """
        with self._write_lock:
            try:
                entry = find_removed(self.corpus_dir, key)
                if entry.doc_id in self.documents():
                    raise CorpusError(f"{entry.doc_id} is indexed again: remove it first, or rename the file to restore")
                put_back(self.corpus_dir, entry)
            except CorpusError as exc:
                raise InputError(str(exc)) from exc
            try:
                return self._rebuild()
            except Exception:
                set_aside(self.corpus_dir, entry.path, entry.doc_id, entry.title)
                raise

    def _rebuild(self) -> BuildReport:
        report = build_index(self.corpus_dir, self.index_dir, encoder=self._assistant.encoder, progress=False, log=self.log)
        fresh = Assistant.open(self.index_dir, config=self.config, encoder=self._assistant.encoder)
        self._assistant = fresh  # one reference swap: readers see old or new
        return report
