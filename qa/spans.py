"""Provenance of cleaned text: raw regions, offset-preserving edits, and the cleaned
streams built from them, each character with the raw range it came from.

``cleaning`` decides the regions and the edits (the document-specific repairs); this
module is the arithmetic that turns them into text and back into raw spans:
:func:`apply_edits` gives the cleaned text of any raw span, :meth:`CleanDocument.spans`
the raw pieces behind any cleaned range. A passage's ``spans`` are raw pieces whose
cleaned concatenation is exactly the passage, which the test suite checks for every chunk.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

BODY, NOTE = "body", "note"


@dataclass(frozen=True)
class Edit:
    """Replace ``raw[start:end]`` by ``text`` (``start == end`` inserts)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Region:
    kind: str  # BODY or NOTE
    start: int
    end: int
    page: int | None


@dataclass
class Stream:
    """The cleaned text of all regions of one kind, with a raw range for every character."""

    kind: str
    text: str
    raw_start: np.ndarray
    raw_end: np.ndarray
    region: np.ndarray  # index into CleanDocument.regions, per character


@dataclass
class CleanDocument:
    raw: str
    edits: list[Edit]
    regions: list[Region]
    streams: dict[str, Stream] = field(default_factory=dict)
    note_starts: set[int] = field(default_factory=set)  # clean offsets (notes stream)

    def spans(self, kind: str, start: int, end: int) -> list[list[int]]:
        """Raw ``[start, end)`` pieces behind ``streams[kind].text[start:end]``."""
        stream = self.streams[kind]
        pieces: list[list[int]] = []
        current = -1
        for i in range(start, end):
            r = int(stream.region[i])
            s, e = int(stream.raw_start[i]), int(stream.raw_end[i])
            if r != current:
                pieces.append([s, e])
                current = r
            else:
                pieces[-1][0] = min(pieces[-1][0], s)
                pieces[-1][1] = max(pieces[-1][1], e)
        return pieces

    def page_at(self, kind: str, offset: int) -> int | None:
        stream = self.streams[kind]
        if not len(stream.region):
            return None
        return self.regions[int(stream.region[min(offset, len(stream.region) - 1)])].page

    def rebuild(self, spans: list[list[int]]) -> str:
        """The cleaned concatenation of raw pieces."""
        return "".join(apply_edits(self.raw, self.edits, s, e) for s, e in spans)


def apply_edits(raw: str, edits: list[Edit], start: int, end: int) -> str:
    """``raw[start:end]`` with every edit lying inside that range applied."""
    starts = [e.start for e in edits]
    i = bisect.bisect_left(starts, start)
    out, pos = [], start
    while i < len(edits) and edits[i].start < end:
        ed = edits[i]
        if ed.end <= end:
            out.append(raw[pos : ed.start])
            out.append(ed.text)
            pos = ed.end
        i += 1
    out.append(raw[pos:end])
    return "".join(out)


class EditSet:
    """Non-overlapping edits; a later pass cannot touch what an earlier one decided."""

    def __init__(self) -> None:
        self._edits: dict[tuple[int, int], Edit] = {}
        self._covered: list[tuple[int, int]] = []

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._covered, (start, float("inf")))
        for s, e in self._covered[max(0, i - 1) : i + 1]:
            if start == end:
                if s < start < e or (s == e == start):
                    return True
            elif s < end and start < e or (s == e and start < s < end):
                return True
        return False

    def add(self, start: int, end: int, text: str) -> bool:
        if self.overlaps(start, end):
            return False
        self._edits[(start, end)] = Edit(start, end, text)
        bisect.insort(self._covered, (start, end))
        return True

    def sorted(self) -> list[Edit]:
        return sorted(self._edits.values(), key=lambda e: (e.start, e.end))


def build_stream(doc: CleanDocument, kind: str) -> Stream:
    """The cleaned text of ``doc``'s regions of one kind, each character with its raw range."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    regs: list[int] = []
    edit_starts = [e.start for e in doc.edits]
    for ri, region in enumerate(doc.regions):
        if region.kind != kind:
            continue
        i = bisect.bisect_left(edit_starts, region.start)
        pos = region.start
        while pos < region.end:
            while i < len(doc.edits) and doc.edits[i].start < pos:
                i += 1
            if i < len(doc.edits) and doc.edits[i].start == pos and doc.edits[i].end <= region.end:
                ed = doc.edits[i]
                for ch in ed.text:
                    chars.append(ch)
                    starts.append(ed.start)
                    ends.append(ed.end)
                    regs.append(ri)
                i += 1
                pos = ed.end
                continue
            chars.append(doc.raw[pos])
            starts.append(pos)
            ends.append(pos + 1)
            regs.append(ri)
            pos += 1
    return Stream(
        kind=kind,
        text="".join(chars),
        raw_start=np.asarray(starts, dtype=np.int64),
        raw_end=np.asarray(ends, dtype=np.int64),
        region=np.asarray(regs, dtype=np.int32),
    )
