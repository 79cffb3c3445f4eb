"""Sentence splitting for French and English text: offsets into the text, never a
rewrite, with the abbreviations of both languages (and of the corpus's publishers) that a
full stop does not end.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    # French
    "m",
    "mm",
    "mme",
    "mmes",
    "mlle",
    "dr",
    "pr",
    "me",
    "st",
    "ste",
    "cf",
    "p",
    "pp",
    "vol",
    "n",
    "no",
    "nº",
    "n°",
    "art",
    "al",
    "éd",
    "ed",
    "etc",
    "env",
    "chap",
    "fig",
    "av",
    "apr",
    "janv",
    "févr",
    "fév",
    "avr",
    "juil",
    "sept",
    "oct",
    "nov",
    "déc",
    "dec",
    "s.d",
    "c.-à-d",
    "ex",
    "hab",
    "min",
    "max",
    "resp",
    "réf",
    "ref",
    "t",
    "coll",
    "dir",
    "gén",
    "gal",
    # English
    "mr",
    "mrs",
    "ms",
    "prof",
    "sr",
    "jr",
    "inc",
    "ltd",
    "co",
    "corp",
    "vs",
    "e.g",
    "i.e",
    "u.s",
    "u.k",
    "gen",
    "col",
    "lt",
    "jan",
    "feb",
    "mar",
    "jun",
    "jul",
    "aug",
    "sep",
    "approx",
    "dept",
    "est",
    "figs",
    "op",
    "ca",
}

# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by white space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"»”’')\]]*(?=\s)")
_BLOCK_BREAK = re.compile(r"\n+")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``text[dot]`` closes an abbreviation or an initial."""
    if text[dot] != ".":
        return False
    # "1." or "IV." opening a numbered line is a list marker, not a sentence.
    line_start = text.rfind("\n", 0, dot) + 1
    if re.fullmatch(r"\s*(?:\d{1,2}|[ivxlc]{1,5}|\|)\s*", text[line_start:dot], re.IGNORECASE):
        return True
    match = re.search(r"([^\s(\[«\"“]+)$", text[:dot])
    if not match:
        return False
    token = match.group(1).lower()
    if token in _ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isalpha():  # initial: "M. Dabrowski", "P. D."
        return True
    if re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):  # U.S, e.g
        return True
    return False


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences, as ``(start, end)`` offsets with no surrounding space.

    Line breaks left in cleaned text are block boundaries (headings, list items), so a
    sentence never crosses one.
    """
    spans: list[tuple[int, int]] = []
    block_start = 0
    for block_match in [*_BLOCK_BREAK.finditer(text), None]:
        block_end = block_match.start() if block_match else len(text)
        block = text[block_start:block_end]
        start = 0
        for m in _SENTENCE_END.finditer(block):
            end = m.end()
            if _is_abbreviation(block, m.start()) and m.end() - m.start() == 1:
                continue
            nxt = block[end:].lstrip()
            # French puts a space before ? ! : ; -- "accords ? Le défi" still ends there,
            # but a lowercase continuation after "?" does not.
            if nxt and nxt[0].islower() and block[m.start()] in ".?!":
                continue
            spans.append((block_start + start, block_start + end))
            start = end
        spans.append((block_start + start, block_start + len(block)))
        if block_match:
            block_start = block_match.end()
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
