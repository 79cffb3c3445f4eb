"""qa.service.Library: uploads and removals on a corpus copy (no server)."""

import pytest

from qa.errors import InputError
from qa.index import resolve_version
from qa.service import Library


@pytest.fixture()
def library(corpus_copy, tmp_path, built_index, encoder):
    import shutil

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    lib = Library(corpus_copy, index, max_upload_mb=1, log=lambda m: None)
    lib.assistant._encoder = encoder
    return lib


def test_refused_uploads_change_nothing(library, tmp_path):
    before = resolve_version(library.index_dir)
    clash = tmp_path / "otan-relations-serbie.txt"
    clash.write_text("Autre chose.\n", encoding="utf-8")
    with pytest.raises(InputError, match="already in the corpus"):
        library.add_document(clash)
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"\x00\x01binary")
    with pytest.raises(InputError, match="binary"):
        library.add_document(binary)
    big = tmp_path / "big.md"
    big.write_text("mot " * 300_000, encoding="utf-8")
    with pytest.raises(InputError, match="--max-upload-mb"):
        library.add_document(big)
    assert resolve_version(library.index_dir) == before
    assert "Autre chose" not in (library.corpus_dir / "otan-relations-serbie.txt").read_text(encoding="utf-8")
    assert not (library.corpus_dir / "x.txt").exists() and not (library.corpus_dir / "big.md").exists()


def test_add_remove_and_restore_lose_nothing(library, tmp_path):
    text = "# Note\n\nLe centre cyber de Lyon forme 40 stagiaires depuis mars 2026.\n"
    doc = tmp_path / "note.md"
    doc.write_text(text, encoding="utf-8")
    report = library.add_document(doc)
    assert report.added == ["note"] and report.embedded_chunks >= 1
    question = "Combien de stagiaires forme le centre cyber de Lyon ?"
    assert library.ask(question).citations[0].doc_id == "note"
    assert library.remove_document("note").removed == ["note"]
    assert "note" not in library.documents() and not (library.corpus_dir / "note.md").exists()
    [entry] = library.removed()
    assert entry.doc_id == "note" and entry.path == "note.md"
    kept = library.corpus_dir / ".removed" / entry.id / "note.md"
    assert kept.read_text(encoding="utf-8") == text  # set aside, byte for byte
    with pytest.raises(InputError, match="unknown document"):
        library.remove_document("note")
    assert library.restore("note").added == ["note"]
    assert (library.corpus_dir / "note.md").read_text(encoding="utf-8") == text and not kept.exists()
    assert library.removed() == [] and library.ask(question).citations[0].doc_id == "note"
    with pytest.raises(InputError, match="no removed document 'note'"):
        library.restore("note")


def test_restore_refuses_when_the_name_is_taken_again(library, tmp_path):
    library.remove_document("otan-relations-serbie")
    (library.corpus_dir / "otan-relations-serbie.txt").write_text("Un autre texte.\n", encoding="utf-8")
    with pytest.raises(InputError, match="in the corpus again"):
        library.restore("otan-relations-serbie")
    assert library.removed()[0].doc_id == "otan-relations-serbie"  # still kept
