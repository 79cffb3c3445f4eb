import pytest

from qa.corpus import load_corpus, read_document
from qa.errors import CorpusError


def _pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode('latin-1')}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_bundled_corpus_with_metadata():
    docs = load_corpus("corpus", warn=lambda m: None)
    assert len(docs) == 5
    by_id = {d.doc_id: d for d in docs}
    ijd = by_id["ijd-elargissement-balkans-securite"]
    assert ijd.publisher == "Institut Jacques Delors" and ijd.language == "fr"
    assert "Jacques Delors Institute" in ijd.aliases
    assert by_id["diplomatie-strategy-balkans-en"].language == "en"
    assert "SOURCES" not in by_id


def test_loaders_for_each_format(tmp_path):
    (tmp_path / "a.txt").write_text("Un texte simple.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Titre\n\nDu *markdown*.\n", encoding="utf-8")
    (tmp_path / "c.html").write_text("<html><head><title>Page</title></head><body><p>Du HTML.</p></body></html>", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.pdf").write_bytes(_pdf(["Page one text.", "Page two text."]))
    docs = {d.doc_id: d for d in load_corpus(tmp_path, warn=lambda m: None)}
    assert set(docs) == {"a", "b", "c", "sub/d"}
    assert docs["c"].title == "Page" and docs["b"].title == "Titre"
    pdf = docs["sub/d"]
    assert pdf.fmt == "pdf" and pdf.raw.count("\f") == 1
    assert "Page one text." in pdf.raw and "Page two text." in pdf.raw


def test_pdf_chunks_carry_page_numbers(tmp_path):
    from qa.chunking import chunk_document
    from qa.config import ChunkingConfig

    (tmp_path / "d.pdf").write_bytes(_pdf(["Premiere page du rapport.", "Deuxieme page du rapport."]))
    doc = read_document(tmp_path / "d.pdf", tmp_path)
    chunks = chunk_document(doc, ChunkingConfig(target_chars=20, overlap_sentences=0))
    assert [c.page for c in chunks] == [1, 2]
    from qa.cleaning import clean

    cleaned = clean(doc.raw, language="fr", fmt="pdf")
    text = cleaned.streams["body"].text
    assert cleaned.page_at("body", text.index("Deuxieme")) == 2


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("bin.txt", b"\x00\x01\x02binary", "binary"),
        ("latin.txt", "Café crème".encode("latin-1"), "not UTF-8"),
        ("empty.txt", b"   \n", "empty"),
        ("sheet.xlsx", b"PK\x03\x04", "unsupported type"),
        ("broken.pdf", b"%PDF-1.4 not really", "cannot read PDF"),
    ],
)
def test_unreadable_files_are_skipped_with_a_warning(tmp_path, name, content, reason):
    (tmp_path / "good.txt").write_text("Un bon document.", encoding="utf-8")
    (tmp_path / name).write_bytes(content)
    warnings = []
    docs = load_corpus(tmp_path, warn=warnings.append)
    assert [d.doc_id for d in docs] == ["good"]
    assert len(warnings) == 1 and name in warnings[0] and reason in warnings[0]
    assert "\n" not in warnings[0]


def test_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="no readable document"):
        load_corpus(tmp_path, warn=lambda m: None)
    with pytest.raises(CorpusError, match="corpus directory not found"):
        load_corpus(tmp_path / "missing")
