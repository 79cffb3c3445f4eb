"""Chunks of the real corpus: raw-offset round trip, sentence alignment, stable ids."""

import pytest

from qa.chunking import Chunk, chunk_document, clean_document
from qa.config import ChunkingConfig
from qa.sentences import split_sentences


@pytest.fixture(scope="module")
def chunked(documents):
    out = []
    for doc in documents:
        cleaned = clean_document(doc)
        out.append((doc, cleaned, chunk_document(doc, cleaned=cleaned)))
    return out


def test_every_chunk_rebuilds_from_its_raw_spans(chunked):
    total = 0
    for doc, cleaned, chunks in chunked:
        for chunk in chunks:
            assert cleaned.rebuild([list(s) for s in chunk.spans]) == chunk.text, (doc.doc_id, chunk.id)
            assert chunk.start == chunk.spans[0][0] and chunk.end == max(e for _, e in chunk.spans)
            assert 0 <= chunk.start < chunk.end <= len(doc.raw)
            total += 1
    assert total > 100


def test_every_sentence_rebuilds_from_its_raw_offsets(chunked):
    for _, cleaned, chunks in chunked:
        for chunk in chunks:
            for s in chunk.sentences:
                sentence = chunk.text[s.start : s.end]
                pieces = cleaned.spans(chunk.kind, *_clean_range(cleaned, chunk, s))
                assert cleaned.rebuild(pieces) == sentence
                assert pieces[0][0] == s.raw_start and pieces[-1][1] == s.raw_end


def _clean_range(cleaned, chunk, sentence):
    text = cleaned.streams[chunk.kind].text
    base = text.index(chunk.text)
    while cleaned.spans(chunk.kind, base, base + len(chunk.text))[0][0] != chunk.start:
        base = text.index(chunk.text, base + 1)
    return base + sentence.start, base + sentence.end


def test_chunks_are_whole_sentences(chunked):
    for _, _, chunks in chunked:
        for chunk in chunks:
            assert [(s.start, s.end) for s in chunk.sentences] == split_sentences(chunk.text)


def test_a_sentence_across_a_page_break_has_two_spans(chunked):
    doc, cleaned, chunks = next(c for c in chunked if c[0].doc_id == "ijd-elargissement-balkans-securite")
    chunk = next(c for c in chunks if "Bayraktar a la Turquie en 2024 ainsi que des hélicoptéres" in c.text)
    assert len(chunk.spans) == 2
    between = doc.raw[chunk.spans[0][1] : chunk.spans[1][0]]
    assert "Service européen pour" in between  # the notes block that interrupts the sentence
    assert chunk.page == 4


def test_notes_are_marked_and_body_is_not_polluted(chunked):
    _, _, chunks = next(c for c in chunked if c[0].doc_id == "ijd-elargissement-balkans-securite")
    notes = [c for c in chunks if c.kind == "note"]
    assert any("Chypre, Grece, Roumanie, Slovaquie et Espagne" in c.text for c in notes)
    assert not any("https://" in c.text for c in chunks if c.kind == "body")
    assert all(c.section == "Notes" for c in notes)


def test_sections_and_pages(chunked):
    _, _, chunks = next(c for c in chunked if c[0].doc_id == "ijd-elargissement-balkans-securite")
    sections = {c.section for c in chunks if c.kind == "body"}
    assert any(s and s.startswith("II. En matiére de défense") for s in sections)
    assert {c.page for c in chunks} >= set(range(1, 9))
    _, _, web = next(c for c in chunked if c[0].doc_id == "diplomatie-strategie-balkans-fr")
    assert all(c.page is None for c in web)
    assert any(c.section == "III. Renforcer l’État de droit" for c in web)


def test_ids_are_stable_and_unique(documents, chunked):
    for doc, _, chunks in chunked:
        again = chunk_document(doc)
        assert [c.id for c in again] == [c.id for c in chunks]
        assert len({c.id for c in chunks}) == len(chunks)


def test_target_size_and_overlap_are_configurable(documents):
    doc = next(d for d in documents if d.doc_id == "otan-relations-serbie")
    small = chunk_document(doc, ChunkingConfig(target_chars=200, overlap_sentences=0))
    large = chunk_document(doc, ChunkingConfig(target_chars=1200, overlap_sentences=0))
    assert len(small) > len(large)
    overlapping = chunk_document(doc, ChunkingConfig(target_chars=300, overlap_sentences=1))
    shared = sum(
        1
        for a, b in zip(overlapping, overlapping[1:])
        if a.sentences and b.text.startswith(a.text[a.sentences[-1].start : a.sentences[-1].end])
    )
    assert shared > 0


def test_chunk_languages(chunked):
    for doc, _, chunks in chunked:
        expected = "en" if doc.doc_id == "diplomatie-strategy-balkans-en" else "fr"
        langs = [c.lang for c in chunks]
        assert langs.count(expected) / len(langs) > 0.9, doc.doc_id


# ---------------------------------------------------------------------------------------
# Properties: arbitrary text never breaks the raw-offset round trip

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qa.corpus import Document  # noqa: E402

# What real files hold, in pieces: hyphenated line breaks, page footers that repeat, form
# feeds, notes, list items, OCR confusions, web addresses, abbreviations, and any Unicode,
# including lone surrogates from bytes that were not UTF-8.
PIECES = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="aeéèàçœ ÀÉ-'’.,;:!?«»()\n\f\t0123456789", max_size=30),
    st.sampled_from(
        [
            "poli-\ntique ",
            "sécu-\n\nrité ",
            "\f",
            "\n\n",
            "\n",
            "Institut Jacques Delors 12\n",
            "L'élargissement aux Balkans 3\n",
            "1 Note de bas de page, https://example.org/a-b.\n",
            "• premier point\n",
            "- second point\n",
            "I'Union & la politigue ",
            "M. Dupont, p. 3, etc. ",
            "# Titre\n",
            "<p>Para&nbsp;graphe</p>",
            "**gras** ",
            "Le pays a acheté 12 drones en 2024. ",
        ]
    ),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", errors="surrogateescape")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(PIECES, max_size=40),
    fmt=st.sampled_from(["txt", "md", "html", "pdf"]),
    language=st.sampled_from(["fr", "en"]),
    target=st.sampled_from([80, 600]),
)
@example(pieces=["¸"], fmt="txt", language="fr", target=80)  # NFKC: " ̧", found by this test
def test_any_text_chunks_into_passages_that_rebuild_from_their_raw_spans(pieces, fmt, language, target):
    raw = "".join(pieces)
    doc = Document("x", f"x.{fmt}", fmt, raw, "", "L'élargissement aux Balkans", language, "Institut Jacques Delors")
    cleaned = clean_document(doc)
    for chunk in chunk_document(doc, ChunkingConfig(target_chars=target), cleaned=cleaned):
        assert cleaned.rebuild([list(s) for s in chunk.spans]) == chunk.text
        assert 0 <= chunk.start < chunk.end <= len(raw) and chunk.text.strip()
        for s in chunk.sentences:
            assert 0 <= s.start < s.end <= len(chunk.text)
            pieces_ = cleaned.spans(chunk.kind, *_clean_range(cleaned, chunk, s))
            assert cleaned.rebuild(pieces_) == chunk.text[s.start : s.end]
            assert pieces_[0][0] == s.raw_start and pieces_[-1][1] == s.raw_end


def test_a_reference_note_is_a_note_with_a_url():
    def chunk(kind, text):
        return Chunk("c", "d", "t", "fr", kind, text, 0, len(text), ((0, len(text)),), None, None, ())

    assert chunk("note", "8 Richet, E. (31 mai 2023). L'Express. https://www.lexpress.fr/").is_reference
    assert chunk("note", "42 Centre de cybercapacités. www.wb3c.org").is_reference
    assert not chunk("note", "10 La Serbie a adhéré au Partenariat pour la paix en 2006.").is_reference
    assert not chunk("body", "Voir https://www.nato.int/").is_reference
