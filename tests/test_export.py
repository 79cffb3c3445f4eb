"""Citations ready to paste, and answers as Markdown (the UI's Export, qa ask --format markdown)."""

import re

import pytest

from qa.cleaning import apply_edits
from qa.export import answer_markdown, citation_text, reference, session_markdown


def test_citation_styles_carry_quote_source_place_and_span(assistant):
    c = assistant.ask("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?").citations[0]
    meta = assistant.documents[c.doc_id]
    span = f"chars {c.evidence.start}–"
    ref = reference(c, meta)
    assert ref.startswith(c.title) and meta["publisher"] in ref and meta["date"] in ref and "FR" in ref and span in ref
    assert f"p. {c.page}" in ref
    quote = " ".join(c.evidence.text.split())
    assert citation_text(c, meta) == f"“{quote}” ({ref})"
    assert citation_text(c, meta, "markdown") == f"> {quote}\n>\n> — {ref}"
    bib = citation_text(c, meta, "bibtex")
    assert bib.startswith(f"@misc{{{c.doc_id}:{c.evidence.start},") and f"quote = {{{quote}}}" in bib and bib.endswith("}")
    with pytest.raises(ValueError, match="plain, markdown, bibtex"):
        citation_text(c, meta, "apa")


def test_markdown_quotes_round_trip_to_the_raw_files(assistant, documents):
    from qa.chunking import clean_document

    raw = {d.doc_id: clean_document(d) for d in documents}
    questions = ("When was NATO's military liaison office in Belgrade established?", "Who won the 2022 FIFA World Cup?")
    answers = [assistant.ask(q) for q in questions]
    text = session_markdown(answer_markdown(a, assistant.documents) for a in answers)
    assert text.startswith("# qa session\n\n## When was NATO") and "**Answer:** " in text
    why = "no passage is close enough to the question; won, FIFA, World, Cup appear nowhere in the documents"
    assert f"*The documents do not answer this question ({why}).*\n\nRelated passages (not citations):" in text
    quotes = re.findall(r"^\d+\. > (.*)\n   — .*chars ([\d–, ]+) of (\S+)$", text, flags=re.M)
    assert len(quotes) == len(answers[0].citations) + len(answers[1].related)
    for quote, spans, doc_id in quotes:
        assert _rebuilt(raw[doc_id], spans) == quote


def _rebuilt(cleaned, spans: str) -> str:
    """The cleaned text behind "12–40, 90–120" (raw pieces), whitespace folded as in quotes."""
    pieces = [tuple(int(x) for x in piece.split("–")) for piece in spans.split(", ")]
    return " ".join("".join(apply_edits(cleaned.raw, cleaned.edits, a, b) for a, b in pieces).split())
