"""Answers out of the tool: citations ready to paste, and sessions as Markdown.

One format for every door: the UI's "copy citation" and "Export", and
``qa ask --format markdown``, all come from here, so the same question gives the same
text everywhere.

A reference names the source as ``corpus/metadata.json`` records it (title, publisher,
date, language), where in it (page or section) and the exact character span of the
quoted sentence in the raw file, which is what a reader checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .answer import Answer, Citation

STYLES = ("plain", "markdown", "bibtex")


def place(c: Citation) -> str:
    """Where in its document: the page, else the section."""
    return f"p. {c.page}" if c.page else (f"§ {c.section}" if c.section else "")


def _source(c: Citation, meta: Mapping[str, object]) -> list[str]:
    return [str(x) for x in (c.title, meta.get("publisher"), meta.get("date"), c.language.upper()) if x]


def evidence_spans(c: Citation) -> list[tuple[int, int]]:
    """The raw pieces of the quoted sentence: more than one when it runs across a page
    footer or a block of notes (the passage's ``spans`` cut to the sentence)."""
    pieces = [(max(s, c.evidence.start), min(e, c.evidence.end)) for s, e in c.spans]
    return [(s, e) for s, e in pieces if s < e] or [(c.evidence.start, c.evidence.end)]


def reference(c: Citation, meta: Mapping[str, object] | None = None) -> str:
    """The reference line: title, publisher, date, language, page or section, and the
    quote's raw character span(s) in the file."""
    span = ", ".join(f"{s}–{e}" for s, e in evidence_spans(c))
    parts = [*_source(c, meta or {}), place(c), f"chars {span} of {c.doc_id}"]
    return ", ".join(p for p in parts if p)


def citation_text(c: Citation, meta: Mapping[str, object] | None = None, style: str = "plain") -> str:
    """What "copy citation" puts on the clipboard: the quote and its reference.

    Raises:
        ValueError: an unknown style.
    """
    meta = meta or {}
    quote = " ".join(c.evidence.text.split())
    if style == "plain":
        return f"“{quote}” ({reference(c, meta)})"
    if style == "markdown":
        return f"> {quote}\n>\n> — {reference(c, meta)}"
    if style == "bibtex":
        fields = {
            "title": c.title,
            "publisher": meta.get("publisher") or "",
            "date": meta.get("date") or "",
            "language": c.language,
            "pages": str(c.page or ""),
            "section": c.section or "",
            "note": "chars " + ", ".join(f"{a}--{b}" for a, b in evidence_spans(c)) + f" of {c.doc_id}",
            "quote": quote,
        }
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
        return f"@misc{{{c.doc_id}:{c.evidence.start},\n{body}\n}}"
    raise ValueError(f"citation style must be one of {', '.join(STYLES)}, got {style!r}")


def answer_markdown(answer: Answer, documents: Mapping[str, Mapping[str, object]]) -> str:
    """One question and its answer: the answer sentence, then each citation as a quote
    with its reference (the related passages, labelled so, when it abstained)."""
    lines = [f"## {answer.question}", ""]
    if answer.abstained:
        lines += [f"*{answer.not_answered()}*", ""]
        if answer.related:
            lines += ["Related passages (not citations):", ""]
        shown = answer.related
    else:
        lines += [f"**Answer:** {' '.join(answer.answer.split())}", ""]
        shown = answer.citations
    for c in shown:
        lines += [f"{c.rank}. > {' '.join(c.evidence.text.split())}", f"   — {reference(c, documents.get(c.doc_id))}", ""]
    return "\n".join(lines)


def session_markdown(turns: Iterable[str]) -> str:
    """A whole conversation for a report: a heading, then each turn's ``answer_markdown``."""
    return "# qa session\n\n" + "\n".join(turns)
