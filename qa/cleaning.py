"""Cleaning that keeps provenance.

The cleaner never rewrites text directly. It decides:

* **regions**: which raw lines are body text, which are notes (footnotes, references), and
  which are page furniture to drop (page footers, dumps of link targets); each region
  lies on one page;
* **edits**: ``Edit(start, end, text)`` replacements in raw coordinates (a joined
  hyphenation, an OCR fix, a line break turned into a space...), never overlapping.

The cleaned text of any raw span is that span with the edits inside it applied
(:func:`~qa.spans.apply_edits`). What regions, edits and cleaned streams are, and the
offset arithmetic between raw and cleaned text, is ``qa.spans``; this module holds the
decisions (structure, then the repair passes).
"""

from __future__ import annotations

import html
import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass

from .spans import BODY, NOTE, CleanDocument, Edit, EditSet, Region, Stream, apply_edits, build_stream

__all__ = ["BODY", "NOTE", "CleanDocument", "Edit", "Region", "Stream", "apply_edits", "clean"]

_TERMINAL = tuple('.!?:;…»"”')
_KEEP_CHARS = set("…’‘“”«»–—")  # NFKC would rewrite these; they are fine as they are.
_SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_INVISIBLE = "\u00ad\ufeff\u200b\u200c\u200d\u2060"


# ---------------------------------------------------------------------------------------
# Structure: lines -> body / note / dropped, with pages

_NOTE_START = re.compile(r"^ ?(\d{1,2}|n)(?:[ \t]+(\S)|[ \t]*$)")
_URL_LINE = re.compile(r"^\s*https?://\S+\s*$")
_FOOTER = re.compile(r"^\s*(?:(\d{1,3})\s*[-–—|]\s*\S.{2,80}|\S.{2,80}\s[-–—|]\s*(\d{1,3}))\s*$")


@dataclass
class _Line:
    start: int  # raw offset of the first character
    end: int  # raw offset after the newline
    text: str  # without the newline
    page: int | None = None
    kind: str = BODY  # BODY, NOTE, or "drop"
    note_start: bool = False


def _split_lines(raw: str) -> list[_Line]:
    return [_Line(m.start(), m.end(), m.group().rstrip("\n")) for m in re.finditer(r"[^\n]*\n|[^\n]+$", raw)]


def _is_footer(text: str, markers: list[str]) -> int | None:
    """The page number of a page footer/header line such as ``2 - Institut Jacques Delors``."""
    m = _FOOTER.match(text)
    if not m:
        return None
    folded = text.lower()
    if any(marker and marker.lower() in folded for marker in markers):
        return int(m.group(1) or m.group(2))
    return None


def _structure(raw: str, footer_markers: list[str], paged: bool) -> list[_Line]:
    lines = _split_lines(raw)
    # Repeated furniture: the same short line (digits aside) on three or more pages.
    shapes = Counter(re.sub(r"\d+", "#", ln.text.strip()) for ln in lines if ln.text.strip())
    candidates = sum(1 for ln in lines if (m := _NOTE_START.match(ln.text)) and (m.group(2) or "A").isupper())
    has_notes = candidates >= 2
    page, last_note, state, after_footer = 1, 0, BODY, False
    page_first = 0
    prev_blank = True
    for i, ln in enumerate(lines):
        text = ln.text
        stripped = text.strip()
        if paged:
            page = raw.count("\f", 0, ln.start + text.startswith("\f")) + 1
        footer_page = _is_footer(text, footer_markers)
        shape = re.sub(r"\d+", "#", stripped)
        if footer_page is not None or (paged and stripped and shapes[shape] >= 3 and "#" in shape and len(stripped) < 80):
            ln.kind, ln.page = "drop", page
            if footer_page is not None and not paged:
                # The footer names the page it closes: renumber that page's lines.
                for prev in lines[page_first:i]:
                    if prev.page == page:
                        prev.page = footer_page
                page = footer_page
            after_footer, state = True, BODY
            prev_blank = True
            continue
        if _URL_LINE.match(text) and (
            after_footer or (i + 1 < len(lines) and _URL_LINE.match(lines[i + 1].text)) or (i and lines[i - 1].kind == "drop")
        ):
            ln.kind, ln.page = "drop", page
            continue
        if after_footer and stripped:
            after_footer = False
            if not paged:
                page += 1
                page_first = i
        m = _NOTE_START.match(text)
        if state == NOTE and stripped[:1].isupper() and not m and _ends_with_url(lines, i):
            ln.note_start = True  # a note whose number OCR lost, after a note ending in a URL
        if has_notes and m and stripped:
            number = 11 if m.group(1) == "n" else int(m.group(1))
            upper = (m.group(2) or "A").isupper() or stripped.split()[-1] == "idem."
            if upper and last_note < number <= last_note + 15:
                if state == NOTE or prev_blank:
                    state = NOTE
                    ln.note_start = True
                    last_note = number
        elif state == NOTE and re.match(r"^ [^\s]", text) and not paged:
            # OCR text: a page starts with a single leading space after the notes block.
            state = BODY
            page += 1
            page_first = i
        ln.kind, ln.page = state, page
        prev_blank = not stripped
    if not paged and page == 1:
        for ln in lines:
            ln.page = None
    return lines


def _ends_with_url(lines: list[_Line], i: int) -> bool:
    for prev in reversed(lines[:i]):
        if prev.text.strip():
            last = prev.text.split()[-1]
            return "://" in last or last.endswith("/")
    return False


def _regions(lines: list[_Line]) -> list[Region]:
    regions: list[Region] = []
    for ln in lines:
        if ln.kind == "drop":
            continue
        last = regions[-1] if regions else None
        if last and last.kind == ln.kind and last.page == ln.page and last.end == ln.start:
            regions[-1] = Region(last.kind, last.start, ln.end, last.page)
        else:
            regions.append(Region(ln.kind, ln.start, ln.end, ln.page))
    return regions


# ---------------------------------------------------------------------------------------
# Passes: each proposes edits inside one region


def _unicode_pass(raw: str, region: Region, edits: EditSet) -> None:
    text = raw[region.start : region.end]
    for m in re.finditer(r"[^\W\d_][\u0300-\u036f]+", text):
        s = region.start + m.start()
        edits.add(s, s + len(m.group()), unicodedata.normalize("NFC", m.group()))
    for i, ch in enumerate(text):
        s = region.start + i
        if ch in _INVISIBLE:
            edits.add(s, s + 1, "")
        elif ch in _SUPERSCRIPT_DIGITS:
            if i and not text[i - 1].isspace():
                edits.add(s, s + 1, "")  # a note call glued to its word
        elif ch == "\f":
            continue
        elif ch.isspace() or ch in _KEEP_CHARS or ord(ch) < 128:
            continue
        else:
            norm = unicodedata.normalize("NFKC", ch)
            # Not the spacing accents ("¸" is " ̧" under NFKC): a passage trims that space,
            # and its span cannot cut the one raw character the space comes from.
            if norm != ch and not unicodedata.combining(ch) and not any(c.isspace() for c in norm):
                edits.add(s, s + 1, norm)


_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-[ \t]*\n[ \t\n]*(?=[^\W\d_])")


def _hyphen_pass(raw: str, region: Region, edits: EditSet) -> None:
    text = raw[region.start : region.end]
    for m in _HYPHEN_BREAK.finditer(text):
        s, e = region.start + m.start(), region.start + m.end()
        token = re.search(r"\S*$", text[: m.start()]).group()
        nxt = text[m.end()]
        # poli-/tique -> politique; Vingt-/Sept and URLs keep their hyphen.
        keep = nxt.isupper() or "/" in token or "." in token
        edits.add(s, e, "-" if keep else "")


_FR_OCR_FIXES: list[tuple[re.Pattern[str], str]] = [
    # I'Union / I’Europe -> l'Union: a capital I before an apostrophe is a misread l.
    (re.compile(r"(?<![^\W\d_])[\[]?I(?=['’]{1,2}[^\W\d_])"), "l"),
    # IIs / lls / lIs -> Ils
    (re.compile(r"(?<![^\W\d_])(?:II|lI|ll)s(?![^\W\d_])"), "Ils"),
    # Ia -> la, Ie -> le, Ies -> les (not French words)
    (re.compile(r"(?<![^\W\d_])Ia(?![^\W\d_])"), "la"),
    (re.compile(r"(?<![^\W\d_])Ie(?![^\W\d_])"), "le"),
    (re.compile(r"(?<![^\W\d_])Ies(?![^\W\d_])"), "les"),
    # contribué & rendre -> à
    (re.compile(r"(?<=[a-zà-ÿ0-9] )&(?= [a-zà-ÿ])"), "à"),
]
_DOUBLE_APOSTROPHE = re.compile(r"(?<=['’])['’](?=[^\W\d_])")
_LOST_L = re.compile(r"(?<=\s)(?=['’]{1,2}[A-ZÀ-Ý])")
# q misread as g: "-igue" is "-ique" but for a few real words; "gue" alone is "que".
_G_FOR_Q = re.compile(r"(?<![^\W\d_])(?:gue|guestions?)(?![^\W\d_])|(?<=[^\W\d_]i)gue(?=s?(?![^\W\d_])|ment)")
_REAL_IGUE = {"figue", "ligue", "fatigue", "intrigue", "digue", "prodigue", "navigue", "irrigue", "brigue", "endigue"}
# A note call glued to a word: OCR turned the superscript digits into symbols.
_NOTE_CALL = re.compile(r"(?<=[^\W_])[®°*¢“”\"?'’][®°*¢“”\"?'’\d]{0,3}(?=[\s.,;:)]|$)")


def _ocr_pass(raw: str, region: Region, edits: EditSet, lexicon: Counter[str], notes: bool) -> None:
    text = raw[region.start : region.end]
    base = region.start
    for pattern, replacement in _FR_OCR_FIXES:
        for m in pattern.finditer(text):
            s = base + m.start()
            if m.group().startswith("["):
                edits.add(s, s + 2, "l")
            else:
                edits.add(s, s + len(m.group()), replacement)
    for m in _DOUBLE_APOSTROPHE.finditer(text):
        edits.add(base + m.start(), base + m.end(), "")
    for m in _LOST_L.finditer(text):  # "de 'UE" -> "de l'UE"
        edits.add(base + m.start(), base + m.start(), "l")
    if notes:
        for m in _NOTE_CALL.finditer(text):
            edits.add(base + m.start(), base + m.end(), "")
    for m in _G_FOR_Q.finditer(text):
        word = re.search(r"[^\W\d_]*$", text[: m.start()]).group() + re.match(r"[^\W\d_]*", text[m.start() :]).group()
        if word.lower().rstrip("s") not in _REAL_IGUE:
            s = base + m.start()
            edits.add(s, s + 1, "q")
    # Other g-for-q misreads, when the document itself uses the corrected word and not
    # the misread one.
    for m in re.finditer(r"[^\W\d_]*gu[^\W\d_]*", text):
        word = m.group()
        for k in [i for i in range(len(word) - 1) if word[i : i + 2] == "gu"]:
            fixed = word[:k] + "q" + word[k + 1 :]
            if lexicon[fixed.lower()] >= 2 and lexicon[word.lower()] <= 2 and lexicon[fixed.lower()] > lexicon[word.lower()]:
                s = base + m.start() + k
                edits.add(s, s + 1, "q")
                break


def _whitespace_pass(
    raw: str,
    region: Region,
    next_region: Region | None,
    edits: EditSet,
    width: float,
    wrapped: bool,
    hard_breaks: set[int],
) -> None:
    text = raw[region.start : region.end]
    base = region.start
    for m in re.finditer(r"\s+", text):
        s, e = base + m.start(), base + m.end()
        run = m.group()
        if m.start() == 0:
            edits.add(s, e, "")
            continue
        line_start = raw.rfind("\n", 0, s) + 1
        before = raw[line_start:s].strip()
        if m.end() == len(text):
            if next_region is None:
                edits.add(s, e, "")
                continue
            nxt = raw[next_region.start : next_region.end].lstrip()
            cont = bool(nxt) and nxt[0].islower() and not before.endswith(_TERMINAL)
            edits.add(s, e, " " if cont else "\n\n")
            continue
        newlines = run.count("\n")
        if not newlines:
            if run != " ":
                edits.add(s, e, " ")
            continue
        nxt_line = raw[e : raw.find("\n", e) if raw.find("\n", e) >= 0 else len(raw)]
        if e in hard_breaks or (raw.rfind("\n", 0, e) + 1) in hard_breaks:
            edits.add(s, e, "\n\n")
            continue
        starts_lower = bool(nxt_line) and (nxt_line[0].islower() or nxt_line[0].isdigit() and newlines == 1)
        block_start = re.match(r"^(?:[-•*–]\s|\d{1,2}\.\s|[IVX]{1,4}\.\s)", nxt_line) is not None
        open_line = not before.endswith(_TERMINAL)
        if region.kind == NOTE:
            cont = True  # a note runs on until the next note starts (a hard break)
        elif wrapped and newlines == 1:
            # Wrapped text (PDF, OCR): one line break is a wrap unless a list item or a
            # heading starts, or a short line closed a sentence.
            cont = not block_start and (starts_lower or not before.endswith((".", "!", "?", "…")) or len(before) >= 0.6 * width)
        else:
            cont = open_line and not block_start and (starts_lower or (newlines == 1 and len(before) >= 0.75 * width))
        if cont:
            edits.add(s, e, " ")
        elif newlines >= 2:
            edits.add(s, e, "\n\n")
        elif run != "\n":
            edits.add(s, e, "\n")


# ---------------------------------------------------------------------------------------
# Formats whose raw text carries markup


def _markup_edits(raw: str, fmt: str, edits: EditSet) -> None:
    if fmt == "md":
        for m in re.finditer(r"(?m)^[ \t]*#{1,6}[ \t]+", raw):
            edits.add(m.start(), m.end(), "")
        for m in re.finditer(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", raw):
            edits.add(m.start(), m.start() + 2, "")
            edits.add(m.end() - 2, m.end(), "")
        for m in re.finditer(r"!?\[([^\]\n]+)\]\([^)\n]*\)", raw):
            edits.add(m.start(), m.start(1), "")
            edits.add(m.end(1), m.end(), "")
    elif fmt == "html":
        _html_edits(raw, edits)


_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "title",
    "hr",
}
_HTML_TOKEN = re.compile(
    r"(?P<drop><(?P<dropname>script|style|head|noscript)\b.*?</(?P=dropname)\s*>)"
    r"|(?P<comment><!--.*?-->|<![^>]*>|<\?[^>]*>)"
    r"|(?P<tag></?(?P<name>[a-zA-Z][a-zA-Z0-9]*)\b[^>]*>)"
    r"|(?P<entity>&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);)"
    r"|(?P<space>\s+)",
    re.DOTALL | re.IGNORECASE,
)


def _html_edits(raw: str, edits: EditSet) -> None:
    """Tags and entities out, one separator between runs of text: a blank line between
    blocks, a space between inline runs."""
    pending: list[tuple[int, int]] = []
    separator = ""
    wrote_text = False
    pos = 0

    def flush() -> None:
        nonlocal separator, pending
        for i, (s, e) in enumerate(pending):
            last = i == len(pending) - 1
            edits.add(s, e, separator if (last and wrote_text) else "")
        pending, separator = [], ""

    for m in _HTML_TOKEN.finditer(raw):
        if m.start() > pos:  # plain text before this token
            flush()
            wrote_text = True
        pos = m.end()
        if m.group("entity"):
            flush()
            wrote_text = True
            edits.add(m.start(), m.end(), html.unescape(m.group()))
            continue
        pending.append((m.start(), m.end()))
        if m.group("tag") and m.group("name").lower() in _BLOCK_TAGS or m.group("drop"):
            separator = "\n\n"
        elif m.group("space") and not separator:
            separator = " "
    if len(raw) > pos:
        flush()
    wrote_text = False
    flush()


# ---------------------------------------------------------------------------------------


def clean(
    raw: str,
    *,
    language: str,
    fmt: str = "txt",
    footer_markers: list[str] | None = None,
) -> CleanDocument:
    """Clean ``raw`` (the file's text as read) into body and note streams.

    Args:
        raw: the raw text; PDF pages are joined with form feeds.
        language: the document's language (``fr`` enables the French OCR repairs).
        fmt: ``txt``, ``md``, ``html`` or ``pdf``.
        footer_markers: strings (publisher, title) that identify page footer lines.
    """
    edits = EditSet()
    if fmt in ("md", "html"):
        _markup_edits(raw, fmt, edits)
    if fmt == "html":
        lines = [_Line(0, len(raw), raw)]
        lines[0].kind = BODY
        regions = [Region(BODY, 0, len(raw), None)]
    else:
        lines = _structure(raw, footer_markers or [], paged=fmt == "pdf")
        regions = [r for r in _regions(lines) if raw[r.start : r.end].strip()]
    hard_breaks = {ln.start for ln in lines if ln.note_start}
    body_lengths = [len(ln.text.strip()) for ln in lines if ln.kind == BODY and len(ln.text.strip()) >= 15]
    width = statistics.quantiles(body_lengths, n=10)[7] if len(body_lengths) >= 10 else 1e9
    # Wrapped text (PDF, OCR, hard-wrapped mail) has most of its lines near one width. Text
    # with one paragraph or heading per line has short lines too, but of every length.
    near = sum(1 for n in body_lengths if 0.85 * width <= n <= 1.1 * width)
    wrapped = width < 150 and near >= 0.5 * len(body_lengths)
    has_notes = any(r.kind == NOTE for r in regions)
    joined = _HYPHEN_BREAK.sub("", raw)
    lexicon = Counter(w.lower() for w in re.findall(r"[^\W\d_]+", joined)) if language == "fr" else Counter()
    for region in regions:
        _unicode_pass(raw, region, edits)
        if fmt != "html":
            _hyphen_pass(raw, region, edits)
        if language == "fr":
            _ocr_pass(raw, region, edits, lexicon, notes=has_notes)
    for kind in (BODY, NOTE):
        mine = [r for r in regions if r.kind == kind]
        for i, region in enumerate(mine):
            nxt = mine[i + 1] if i + 1 < len(mine) else None
            if fmt == "html":
                continue
            _whitespace_pass(raw, region, nxt, edits, width, wrapped, hard_breaks if kind == NOTE else set())
    doc = CleanDocument(raw=raw, edits=edits.sorted(), regions=regions)
    for kind in (BODY, NOTE):
        doc.streams[kind] = build_stream(doc, kind)
    if NOTE in doc.streams:
        stream = doc.streams[NOTE]
        starts = set(hard_breaks)
        doc.note_starts = {
            i for i in range(len(stream.text)) if int(stream.raw_start[i]) in starts and (i == 0 or stream.text[i - 1] == "\n")
        }
    return doc
