"""Chunking: cleaned streams -> sentence-aligned passages with raw provenance."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .analysis import detect_language
from .cleaning import BODY, NOTE, CleanDocument, clean
from .config import ChunkingConfig
from .corpus import Document
from .sentences import split_sentences


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk: offsets into the chunk text, and raw offsets into the file."""

    start: int
    end: int
    raw_start: int
    raw_end: int
    heading: bool = False  # a heading line: context for the passage, never its evidence


@dataclass(frozen=True)
class Chunk:
    """A passage, with everything a citation needs.

    ``start``/``end`` are raw character offsets into the document as read; ``spans`` are
    the raw pieces whose cleaned concatenation is exactly ``text``.
    """

    id: str
    doc_id: str
    title: str
    lang: str
    kind: str  # "body" or "note"
    text: str
    start: int
    end: int
    spans: tuple[tuple[int, int], ...]
    page: int | None
    section: str | None
    sentences: tuple[Sentence, ...]

    @property
    def is_reference(self) -> bool:
        """A note that cites another work (it holds a URL): what the document cites, not
        what it says."""
        return self.kind == "note" and ("http" in self.text or "www." in self.text)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "title": self.title,
            "lang": self.lang,
            "kind": self.kind,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "spans": [list(s) for s in self.spans],
            "page": self.page,
            "section": self.section,
            "sentences": [[s.start, s.end, s.raw_start, s.raw_end, s.heading] for s in self.sentences],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Chunk:
        return cls(
            id=d["id"],
            doc_id=d["doc_id"],
            title=d["title"],
            lang=d["lang"],
            kind=d["kind"],
            text=d["text"],
            start=d["start"],
            end=d["end"],
            spans=tuple(tuple(s) for s in d["spans"]),  # type: ignore[misc]
            page=d["page"],
            section=d["section"],
            sentences=tuple(Sentence(*s) for s in d["sentences"]),
        )


# Web addresses, and the pieces of one that line wrapping cut off (paths with two slashes).
_URL = re.compile(r"(?:https?://|www\.)\S*|\S*/\S*/\S*")


def strip_urls(text: str) -> str:
    """Text without web addresses: their slugs are noise to both retrievers."""
    return _URL.sub(" ", text) if "/" in text else text


def indexed_text(chunk: Chunk, context: str = ChunkingConfig.context) -> str:
    """The text that is embedded and BM25-indexed for a chunk: the passage without web
    addresses, preceded by its heading (and the document title) unless the passage
    already starts with it."""
    parts = []
    if context == "title+section" and chunk.title and not chunk.text.startswith(chunk.title):
        parts.append(chunk.title)
    if context in ("section", "title+section") and chunk.section and chunk.kind == BODY:
        if not chunk.text.startswith(chunk.section) and chunk.section != chunk.title:
            parts.append(chunk.section)
    parts.append(strip_urls(chunk.text))
    return "\n".join(parts)


def clean_document(doc: Document) -> CleanDocument:
    markers = [m for m in (doc.publisher.split("(")[0].strip(), doc.title) if m]
    return clean(doc.raw, language=doc.language, fmt=doc.fmt, footer_markers=markers)


_HEADING_START = re.compile(r"^(?:[|]\s*\.?\s*|[IVX]{1,4}\s*\.\s*|\d{1,2}\.\s+|[A-ZÀ-Ý])")


def _is_heading(line: str) -> bool:
    """A short line of its own that does not end like a sentence."""
    line = line.strip()
    return (
        3 <= len(line) <= 120
        and len(line.split()) >= 2
        and not line.endswith((".", ",", ";", "!", "?", "…"))
        and not line.startswith(("•", "-", "–", "*", "#", "("))
        and _HEADING_START.match(line) is not None
    )


def chunk_document(doc: Document, config: ChunkingConfig | None = None, cleaned: CleanDocument | None = None) -> list[Chunk]:
    """Cut a document into chunks of about ``target_chars``, never inside a sentence.

    Chunks start at headings; notes (footnotes, references) are chunked apart from the
    body, each note starting a chunk. Ids hash the content, so they are stable.
    """
    config = config or ChunkingConfig()
    cleaned = cleaned or clean_document(doc)
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for kind in (BODY, NOTE):
        stream = cleaned.streams.get(kind)
        if stream is None or not stream.text.strip():
            continue
        text = stream.text
        groups = _group_sentences(text, split_sentences(text), cleaned, kind, config)
        for section, sentences in groups:
            a, b = sentences[0][0], sentences[-1][1]
            body = text[a:b]
            key = f"{doc.doc_id}\x00{kind}\x00{body}"
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            spans = cleaned.spans(kind, a, b)
            sent_objs = []
            for s, e in sentences:
                pieces = cleaned.spans(kind, s, e)
                sent_objs.append(Sentence(s - a, e - a, pieces[0][0], pieces[-1][1], kind == BODY and _is_heading_sentence(text, (s, e))))
            chunks.append(
                Chunk(
                    id=hashlib.sha256(f"{key}\x00{occurrence}".encode()).hexdigest()[:16],
                    doc_id=doc.doc_id,
                    title=doc.title,
                    lang=detect_language(body, prior=doc.language),
                    kind=kind,
                    text=body,
                    start=spans[0][0],
                    end=max(e for _, e in spans),
                    spans=tuple((s, e) for s, e in spans),
                    page=cleaned.page_at(kind, a),
                    section=section if kind == BODY else "Notes",
                    sentences=tuple(sent_objs),
                )
            )
    return chunks


def _group_sentences(
    text: str,
    sentences: list[tuple[int, int]],
    cleaned: CleanDocument,
    kind: str,
    config: ChunkingConfig,
) -> list[tuple[str | None, list[tuple[int, int]]]]:
    groups: list[tuple[str | None, list[tuple[int, int]]]] = []
    current: list[tuple[int, int]] = []
    section: str | None = None
    current_section: str | None = None

    def flush(keep_overlap: bool) -> None:
        nonlocal current, current_section
        if current:
            groups.append((current_section, current))
        tail = current[-config.overlap_sentences :] if keep_overlap and config.overlap_sentences > 0 else []
        # Never start a chunk with only overlap that is itself a heading.
        current = [s for s in tail if not _is_heading_sentence(text, s)]
        current_section = section

    for s, e in sentences:
        line_start = text.rfind("\n", 0, s) + 1
        starts_note = kind == NOTE and (s in cleaned.note_starts or (line_start == s and text[max(0, s - 2) : s] == "\n\n"))
        if kind == BODY and _is_heading_sentence(text, (s, e)):
            flush(keep_overlap=False)
            section = _tidy_heading(text[s:e])
            current_section = section
            current = [(s, e)]
            continue
        if starts_note and current:
            flush(keep_overlap=False)
        size = (e - current[0][0]) if current else 0
        has_content = any(not _is_heading_sentence(text, c) for c in current)
        if current and has_content and size > config.target_chars:
            flush(keep_overlap=True)
        if not current:
            current_section = section
        current.append((s, e))
    flush(keep_overlap=False)
    return groups


def _is_heading_sentence(text: str, span: tuple[int, int]) -> bool:
    s, e = span
    line_start = text.rfind("\n", 0, s) + 1
    line_end = text.find("\n", e)
    whole = text[line_start : len(text) if line_end < 0 else line_end].strip() == text[s:e]
    return whole and _is_heading(text[s:e])


def _tidy_heading(heading: str) -> str:
    # OCR reads the roman numerals I, II, III of headings as "|", "Il", "Ill".
    heading = re.sub(r"^[|]\s*\.\s*", "I. ", heading)
    heading = re.sub(r"^Ill\s*\.\s*", "III. ", heading)
    heading = re.sub(r"^Il\s*\.\s*", "II. ", heading)
    return heading.strip()
