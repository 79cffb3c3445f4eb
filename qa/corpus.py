"""Corpus: find documents, read them (.txt, .md, .html, .pdf), attach their metadata.

A document's raw text is the file's text as read (UTF-8); for a PDF it is the text of
each page, pages joined by a form feed, so that offsets and pages can be cited.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .analysis import detect_language
from .errors import CorpusError

FORMATS = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}
METADATA_FILE = "metadata.json"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Document:
    """One source file, read.

    Example:
        >>> doc = read_document(Path("corpus/otan-relations-serbie.txt"), Path("corpus"))
        >>> doc.doc_id, doc.language
        ('otan-relations-serbie', 'fr')
    """

    doc_id: str  # path relative to the corpus, without extension
    path: str  # path relative to the corpus
    fmt: str
    raw: str
    sha256: str
    title: str
    language: str
    publisher: str = ""
    date: str = ""
    # Other names of the source ("IJD", "Jacques Delors Institute"): a question that names
    # the source is steered to its passages (``analysis.named_documents``).
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lone surrogates (PDF text extraction yields them) cannot be written as UTF-8:
        # each becomes U+FFFD, one character for one, so offsets do not move.
        if LONE_SURROGATE.search(self.raw):
            object.__setattr__(self, "raw", LONE_SURROGATE.sub("\ufffd", self.raw))


class UnreadableDocument(Exception):
    """A file that is skipped, with the reason."""


def doc_id_for(path: Path, corpus_dir: Path) -> str:
    return path.relative_to(corpus_dir).with_suffix("").as_posix()


def load_metadata(corpus_dir: Path) -> dict:
    path = corpus_dir / METADATA_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not valid JSON ({exc}); fix it or delete it") from exc


def corpus_files(corpus_dir: Path, metadata: dict | None = None) -> list[Path]:
    """Every file under the corpus that is a candidate document (sorted)."""
    metadata = metadata if metadata is not None else load_metadata(corpus_dir)
    excluded = set(metadata.get("exclude", [])) | {METADATA_FILE}
    files = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir).as_posix()
        if not path.is_file() or rel in excluded or any(p.startswith(".") for p in path.parts[len(corpus_dir.parts) :]):
            continue
        files.append(path)
    return files


def read_document(path: Path, corpus_dir: Path, meta: dict | None = None) -> Document:
    """Read one file. Raises ``UnreadableDocument`` with a reason a user can act on."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableDocument(f"unsupported type '{path.suffix or '(none)'}' (supported: .txt .md .html .pdf)")
    data = path.read_bytes()
    if not data.strip():
        raise UnreadableDocument("empty file")
    if fmt == "pdf":
        raw = _pdf_text(path)
    else:
        if b"\x00" in data[:8192]:
            raise UnreadableDocument("binary content, not text")
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableDocument(f"not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from exc
    if not re.search(r"\w", raw):
        raise UnreadableDocument("no text in it")
    meta = meta or {}
    language = meta.get("language") or detect_language(raw[:5000])
    return Document(
        doc_id=doc_id_for(path, corpus_dir),
        path=path.relative_to(corpus_dir).as_posix(),
        fmt=fmt,
        raw=raw,
        sha256=hashlib.sha256(data).hexdigest(),
        title=meta.get("title") or _guess_title(raw, fmt, path),
        language=language if language in ("fr", "en") else "en",
        publisher=meta.get("publisher", ""),
        date=meta.get("date", ""),
        aliases=tuple(str(a) for a in meta.get("aliases", ())),
    )


def _pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        pages = [(page.extract_text() or "").rstrip("\n") + "\n" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on damaged files
        raise UnreadableDocument(f"cannot read PDF ({type(exc).__name__}: {exc})") from exc
    return "\f".join(pages)


def _guess_title(raw: str, fmt: str, path: Path) -> str:
    if fmt == "html":
        m = re.search(r"<title[^>]*>(.*?)</title>", raw, re.IGNORECASE | re.DOTALL)
        if m and m.group(1).strip():
            return " ".join(m.group(1).split())[:120]
    for line in raw.splitlines():
        line = re.sub(r"^#+\s*", "", line).strip()
        if len(line) >= 3 and not line.startswith("<"):
            return line[:120]
    return path.stem


def load_corpus(
    corpus_dir: str | Path,
    warn: Callable[[str], None] = print,
) -> list[Document]:
    """Read every supported document. Unreadable files are skipped with a one-line warning.

    Raises:
        CorpusError: the directory is missing or holds no readable document.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus directory not found: {corpus_dir} (pass --corpus DIR)")
    metadata = load_metadata(corpus_dir)
    docs_meta = metadata.get("documents", {})
    documents = []
    for path in corpus_files(corpus_dir, metadata):
        doc_id = doc_id_for(path, corpus_dir)
        try:
            documents.append(read_document(path, corpus_dir, docs_meta.get(doc_id)))
        except UnreadableDocument as exc:
            warn(f"warning: skipping {path}: {exc}")
        except OSError as exc:
            warn(f"warning: skipping {path}: cannot read ({exc.strerror})")
    if not documents:
        raise CorpusError(f"no readable document in {corpus_dir}: add .txt, .md, .html or .pdf files, or pass --corpus DIR")
    ids = [d.doc_id for d in documents]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise CorpusError(f"two files share the document id(s) {sorted(dupes)}: rename one of each pair")
    return documents


# ---------------------------------------------------------------------------------------
# Removal that keeps the file: corpus/.removed/<when>/<path> (hidden, so never indexed)

REMOVED_DIR = ".removed"
REMOVED_RECORD = "removed.json"


@dataclass(frozen=True)
class Removed:
    """A document taken out of the corpus, its file kept for restoring."""

    id: str  # the folder under corpus/.removed/
    doc_id: str
    path: str  # where it was, relative to the corpus
    title: str
    removed: str  # ISO time


def timestamped_name() -> str:
    """A name that sorts by creation time (UTC, to the microsecond), with a random suffix:
    index versions and removals, whose newest is found by sorting names."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}-" + uuid.uuid4().hex[:6]


def set_aside(corpus_dir: str | Path, path: str, doc_id: str, title: str = "") -> Removed:
    """Move ``path`` (relative to the corpus) under ``corpus/.removed/<when>/``."""
    corpus_dir = Path(corpus_dir)
    entry = timestamped_name()
    folder = corpus_dir / REMOVED_DIR / entry
    (folder / path).parent.mkdir(parents=True, exist_ok=True)
    record = Removed(entry, doc_id, path, title, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (folder / REMOVED_RECORD).write_text(json.dumps(record.__dict__, ensure_ascii=False, indent=2), encoding="utf-8")
    (corpus_dir / path).rename(folder / path)  # same file system: atomic, nothing copied
    return record


def removed_documents(corpus_dir: str | Path) -> list[Removed]:
    """What was set aside, newest first."""
    out = []
    for record in (Path(corpus_dir) / REMOVED_DIR).glob(f"*/{REMOVED_RECORD}"):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            entry = Removed(**{k: str(data[k]) for k in ("id", "doc_id", "path", "title", "removed")})
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (record.parent / entry.path).is_file():
            out.append(entry)
    return sorted(out, key=lambda e: e.id, reverse=True)


def find_removed(corpus_dir: str | Path, key: str) -> Removed:
    """A removed document by its entry id, or the newest removal of a document id.

    Raises:
        CorpusError: nothing removed under that name.
    """
    entries = removed_documents(corpus_dir)
    for entry in entries:
        if key in (entry.id, entry.doc_id):
            return entry
    known = ", ".join(f"{e.doc_id} ({e.id})" for e in entries) or "none"
    raise CorpusError(f"no removed document {key!r}; removed: {known}")


def put_back(corpus_dir: str | Path, entry: Removed) -> Path:
    """Move a removed document's file back to where it was.

    Raises:
        CorpusError: a file of that name is in the corpus again.
    """
    corpus_dir = Path(corpus_dir)
    target = corpus_dir / entry.path
    if target.exists():
        raise CorpusError(f"{entry.path} is in the corpus again: remove or rename that file, then restore")
    folder = corpus_dir / REMOVED_DIR / entry.id
    target.parent.mkdir(parents=True, exist_ok=True)
    (folder / entry.path).rename(target)
    shutil.rmtree(folder, ignore_errors=True)
    return target
