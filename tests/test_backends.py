"""The backend contract: the same retrieval tests on every engine.

- ``faiss``: FAISS + bm25s in process (the default);
- ``qdrant-edge``: an embedded Qdrant Edge shard (the real Qdrant search core);
- ``qdrant-memory``: the cluster transport (qdrant-client) against ``QdrantClient(":memory:")``,
  which checks the requests it builds;
- ``qdrant-live``: the cluster transport against a live Qdrant at ``$QDRANT_URL``, run
  only when it is set (the one permitted skip);
- ``numpy-test``: a test-only engine (``tests/numpy_engine.py``: exact numpy search and
  the local BM25), registered here, to show that an engine is one file and a
  registration.

Real bundled corpus, real default encoder. A Qdrant index is made from a copy of the
FAISS one by switching its backend (no re-embedding).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from numpy_engine import NAME as NUMPY_ENGINE  # registers the test-only engine

from qa import Assistant
from qa.config import RetrievalConfig
from qa.index import Index, build_index
from qa.retrieval import Where, open_backend, retrieve, rrf

# qdrant-client's in-process mode says it ignores payload indexes and HNSW parameters.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning", "ignore:Local mode performs exact:UserWarning")
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
BACKENDS = ["faiss", "qdrant-edge", "qdrant-memory", "qdrant-live", NUMPY_ENGINE]


def _quiet(_message: str) -> None:
    pass


def _backend_args(name: str) -> dict:
    if name == "faiss":
        return {"backend": "faiss"}
    if name in ("qdrant-edge", NUMPY_ENGINE):
        return {"backend": name}
    if name == "qdrant-memory":
        return {"backend": "qdrant", "url": ":memory:", "collection": f"test-{uuid.uuid4().hex[:8]}"}
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("QDRANT_URL is not set: no live Qdrant cluster to run the contract against (the one permitted skip)")
    collection = f"qa-test-{uuid.uuid4().hex[:8]}"
    _LIVE_COLLECTIONS.append(collection)
    return {"backend": "qdrant", "url": url, "collection": collection}


_LIVE_COLLECTIONS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _drop_live_collections():
    """Leave nothing behind on a live cluster."""
    yield
    if _LIVE_COLLECTIONS:
        from qa.engines.qdrant_transport import connect

        client = connect(os.environ["QDRANT_URL"])
        for collection in client.get_collections().collections:
            if any(collection.name.startswith(prefix) for prefix in _LIVE_COLLECTIONS):
                client.delete_collection(collection.name)


def _switch(built_index, corpus, dest, encoder, name):
    """A copy of the session's FAISS index, re-indexed for backend ``name``."""
    shutil.copytree(built_index, dest)
    args = _backend_args(name)
    report = build_index(corpus, dest, encoder=encoder, progress=False, log=_quiet, **args)
    if name != "faiss":
        assert report.embedded_chunks == 0 and report.reused_chunks == report.chunks  # vectors reused
    return dest


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request, built_index, encoder, tmp_path_factory):
    dest = tmp_path_factory.mktemp(f"index-{request.param}") / "idx"
    path = _switch(built_index, CORPUS, dest, encoder, request.param)
    return request.param, Assistant.open(path, config=RetrievalConfig(), encoder=encoder)


def test_backend_is_recorded_and_used(engine):
    name, assistant = engine
    manifest = assistant.index.manifest["backend"]
    assert manifest["type"] == {"faiss": "faiss", "qdrant-edge": "qdrant-edge", NUMPY_ENGINE: NUMPY_ENGINE}.get(name, "qdrant")
    expected = {"faiss": "LocalBackend", NUMPY_ENGINE: "NumpySearcher"}.get(name, "QdrantBackend")
    assert type(assistant.backend).__name__ == expected
    if name in ("qdrant-edge", NUMPY_ENGINE):
        assert (assistant.index.path / "qdrant").is_dir() == (name == "qdrant-edge")
        assert not (assistant.index.path / "dense.faiss").exists()


def test_top_hit_and_citation(engine, documents):
    _, assistant = engine
    answer = assistant.ask("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?")
    assert not answer.abstained and answer.language == "fr"
    first = answer.citations[0]
    assert first.doc_id == "ijd-elargissement-balkans-securite" and first.page == 4
    assert "Bosnie-Herzégovine" in first.text and "Bayraktar" in first.evidence.text
    assert answer.answer == first.evidence.text
    # Exact spans: the citation and its evidence rebuild from the raw document.
    from qa.chunking import clean_document

    cleaned = clean_document({d.doc_id: d for d in documents}[first.doc_id])
    assert cleaned.rebuild(first.spans) == first.text
    assert first.text[first.evidence_offset :].startswith(first.evidence.text)
    # (This sentence runs across a page break and a notes block: its raw span holds both.)
    assert first.start <= first.evidence.start < first.evidence.end <= first.end


@pytest.mark.parametrize(
    "question, doc_id, quote",
    [
        ("Which country bought Bayraktar drones from Turkey in 2024?", "ijd-elargissement-balkans-securite", "Bayraktar"),
        ("When was NATO's military liaison office in Belgrade established?", "otan-relations-serbie", "établi en décembre 2006"),
        (
            "How many votes in favour did the European Parliament resolution on security and defence partnerships get?",
            "pe-partenariats-securite-defense",
            "440 voix pour",
        ),
    ],
)
def test_english_question_answered_only_in_french_is_cited_in_top_3(engine, question, doc_id, quote):
    _, assistant = engine
    answer = assistant.ask(question)
    assert answer.language == "en" and not answer.abstained
    top3 = answer.citations[:3]
    assert any(c.doc_id == doc_id and quote in c.text and c.language == "fr" for c in top3), [(c.doc_id, c.text[:60]) for c in top3]


def test_filters(engine):
    _, assistant = engine
    answer = assistant.ask("Balkans occidentaux", k=3, lang="en")
    shown = answer.citations + answer.related
    assert 0 < len(shown) <= 3 and all(c.language == "en" for c in shown)
    for mode in ("hybrid", "bm25", "dense"):
        answer = assistant.ask("coopération militaire", doc="otan-relations-serbie", mode=mode)
        shown = answer.citations + answer.related
        assert shown and all(c.doc_id == "otan-relations-serbie" for c in shown), mode
    none = assistant.ask("coopération militaire", lang="en", doc="otan-relations-serbie")  # a French document
    assert none.citations == [] and none.related == []


def test_abstention(engine):
    _, assistant = engine
    answer = assistant.ask("What is the capital of Australia?")
    assert answer.abstained and answer.citations == [] and answer.answer == "" and answer.related


def test_dense_results_equal_exact_search(engine, encoder):
    """Dense search on every engine gives the exact top 10 (numpy over the stored vectors):
    the same rows, the same scores."""
    _, assistant = engine
    vectors = np.asarray(assistant.index.vectors, dtype=np.float32)
    for question in ("stratégie française pour les Balkans", "Serbia's military neutrality"):
        qvec = encoder.encode([question])[0]
        scores = vectors @ qvec
        exact = np.argsort(-scores, kind="stable")[:10]
        found = assistant.backend.dense(qvec, 10, None)
        assert [r for r, _ in found] == exact.tolist()
        assert np.allclose([s for _, s in found], scores[exact], atol=1e-5)


def test_fused_scores_are_rrf_of_the_two_lists(engine, encoder):
    """One fused request gives what qa.retrieval.rrf gives on the engine's own lists."""
    _, assistant = engine
    question = "drones Bayraktar Turquie"
    qvec = encoder.encode([question])[0]
    backend = assistant.backend
    hits = retrieve(backend, qvec, question, "fr", depth=20)
    dense = backend.dense(qvec, 20, None)
    lexical = backend.lexical(question, "fr", 20, None)
    expected = rrf({"dense": [r for r, _ in dense], "bm25": [r for r, _ in lexical]}, k=60)
    assert {h.row for h in hits} <= set(expected)
    for hit in hits[:10]:
        assert hit.score == pytest.approx(expected[hit.row], abs=1e-6)
    assert "Bayraktar" in assistant.index.chunks[hits[0].row].text


def test_lexical_layer_is_french_aware(engine):
    """Elision and plural: « l'élargissement » finds passages that say « élargissement »."""
    _, assistant = engine
    from qa.chunking import indexed_text

    hits = assistant.backend.lexical("l'élargissements", "fr", 5, Where(lang="fr"))
    context = assistant.index.manifest["settings"]["chunking"]["context"]  # the title and heading are indexed too
    assert hits and all("élargissement" in indexed_text(assistant.index.chunks[r], context).lower() for r, _ in hits)


@pytest.mark.parametrize("name", BACKENDS)
def test_incremental_update(name, built_index, corpus_copy, tmp_path, encoder):
    path = _switch(built_index, corpus_copy, tmp_path / "idx", encoder, name)
    before = Index.load(path)
    target = corpus_copy / "otan-relations-serbie.txt"
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("Six Alliés ont apporté un soutien.", "Sept Alliés ont apporté un soutien décisif."), encoding="utf-8")
    (corpus_copy / "new-note.md").write_text("# Note\n\nLe projet Horizons Partagés vise la jeunesse des Balkans.\n", encoding="utf-8")
    (corpus_copy / "pe-partenariats-securite-defense.txt").unlink()

    report = build_index(corpus_copy, path, encoder=encoder, progress=False, log=_quiet)  # backend kept
    after = Index.load(path)
    assert after.manifest["backend"]["type"] == before.manifest["backend"]["type"]
    assert report.changed == ["otan-relations-serbie"] and report.added == ["new-note"]
    assert 0 < report.embedded_chunks < 10
    if name.startswith("qdrant-"):
        backend = after.manifest["backend"]
        assert backend["upserted"] < len(after.rows) and backend["points"] == len(after.rows)
    assistant = Assistant(after, config=RetrievalConfig(), encoder=encoder)
    assert "Sept Alliés" in assistant.ask("Combien d'Alliés ont apporté un soutien ?").citations[0].text
    assert assistant.ask("Quel projet vise la jeunesse ?").citations[0].doc_id == "new-note"
    gone = assistant.ask("résolution du Parlement européen sur les partenariats de sécurité et de défense", k=10)
    assert all(c.doc_id != "pe-partenariats-securite-defense" for c in gone.citations + gone.related)
    if name == "qdrant-edge":
        # The previous version's shard is untouched: still whole and searchable.
        old = Assistant(Index.load(before.path), config=RetrievalConfig(), encoder=encoder)
        assert old.backend.store.count() == len(before.rows)
        assert any(c.doc_id == "pe-partenariats-securite-defense" for c in old.ask("Parlement européen partenariats", k=10).citations)
    if name.startswith("qdrant-") and name != "qdrant-edge":
        assert assistant.backend.store.count() == len(after.rows)  # removed points deleted


def test_edge_build_failure_leaves_the_previous_version_live(built_index, corpus_copy, tmp_path, encoder, monkeypatch):
    from qa.engines import qdrant

    path = _switch(built_index, corpus_copy, tmp_path / "idx", encoder, "qdrant-edge")
    live = (path / "CURRENT").read_text()
    (corpus_copy / "new-note.md").write_text("# Note\n\nUne phrase nouvelle.\n", encoding="utf-8")

    def boom(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(qdrant.EdgeStore, "finish", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(corpus_copy, path, encoder=encoder, progress=False, log=_quiet)
    assert (path / "CURRENT").read_text() == live
    assert not list(path.glob(".tmp-*"))
    index = Index.load(path)
    assert index.manifest["backend"]["type"] == "qdrant-edge"
    assert open_backend(index).store.count() == len(index.rows)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend", "qdrant"], "needs the cluster's address: --url"),
        (["--backend", "faiss", "--url", "http://localhost:6333"], "--url and --collection are for --backend qdrant"),
        (["--backend", "qdrant", "--url", "http://127.0.0.1:1"], "cannot reach Qdrant at http://127.0.0.1:1"),
    ],
)
def test_bad_backend_options_are_one_line_errors(argv, message, corpus_copy, tmp_path, capsys):
    from qa.cli import main

    assert main(["index", "--corpus", str(corpus_copy), "--index", str(tmp_path / "idx"), "--quiet", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "idx" / "CURRENT").exists()


def test_cli_index_then_ask_with_edge(corpus_copy, tmp_path, capsys):
    from qa.cli import main

    index = str(tmp_path / "idx")
    assert main(["index", "--corpus", str(corpus_copy), "--index", index, "--backend", "qdrant-edge", "--quiet"]) == 0
    assert Index.load(index).manifest["backend"]["type"] == "qdrant-edge"
    capsys.readouterr()
    assert main(["ask", "--index", index, "--json", "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?"]) == 0
    import json

    answer = json.loads(capsys.readouterr().out)
    assert answer["citations"][0]["doc_id"] == "ijd-elargissement-balkans-securite"
    # A later update without --backend keeps it; --backend faiss switches back without re-embedding.
    assert main(["index", "--corpus", str(corpus_copy), "--index", index, "--quiet"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["index", "--corpus", str(corpus_copy), "--index", index, "--backend", "faiss", "--quiet"]) == 0
    assert "texts embedded 0," in capsys.readouterr().out
    assert Index.load(index).manifest["backend"]["type"] == "faiss"


def test_unequal_weights_are_fused_by_us(engine, encoder):
    """Qdrant's weighted RRF weighs ranks, ours scores: unequal weights take two requests
    and qa.retrieval.rrf, on every engine."""
    _, assistant = engine
    question = "drones Bayraktar Turquie"
    qvec = encoder.encode([question])[0]
    weights = {"dense": 2.0, "bm25": 1.0}
    hits = retrieve(assistant.backend, qvec, question, "fr", depth=20, weights=weights)
    assert all(h.dense_rank is not None or h.bm25_rank is not None for h in hits)
    dense = assistant.backend.dense(qvec, 20, None)
    lexical = assistant.backend.lexical(question, "fr", 20, None)
    expected = rrf({"dense": [r for r, _ in dense], "bm25": [r for r, _ in lexical]}, weights, k=60)
    assert [h.row for h in hits] == sorted(expected, key=lambda r: (-expected[r], r))
    # Equal weights other than 1: the same order as 1 and 1, scores scaled.
    ones = retrieve(assistant.backend, qvec, question, "fr", depth=20)
    twos = retrieve(assistant.backend, qvec, question, "fr", depth=20, weights={"dense": 2.0, "bm25": 2.0})
    assert [h.row for h in twos] == [h.row for h in ones]
    assert [h.score for h in twos] == pytest.approx([2 * h.score for h in ones], abs=1e-6)


@pytest.mark.parametrize("name", ["qdrant-edge", "qdrant-memory"])
def test_rebuild_keeps_the_backend(name, built_index, corpus_copy, tmp_path, encoder):
    path = _switch(built_index, corpus_copy, tmp_path / "idx", encoder, name)
    before = Index.load(path).manifest["backend"]
    build_index(corpus_copy, path, encoder=encoder, rebuild=True, progress=False, log=_quiet)
    after = Index.load(path).manifest["backend"]
    assert {k: after.get(k) for k in ("type", "url", "collection")} == {k: before.get(k) for k in ("type", "url", "collection")}
    assistant = Assistant.open(path, config=RetrievalConfig(), encoder=encoder)
    assert assistant.ask("Quel pays a acheté des drones Bayraktar ?").citations[0].doc_id == "ijd-elargissement-balkans-securite"
    if name == "qdrant-memory":
        from qa.engines.qdrant_transport import connect

        names = {c.name for c in connect(":memory:").get_collections().collections}
        assert after["physical"] != before["physical"]
        assert after["physical"] in names and before["physical"] not in names  # the replaced one dropped after the switch


def test_cluster_rebuild_that_dies_leaves_the_live_collection(built_index, corpus_copy, tmp_path, encoder, monkeypatch):
    from qa.engines import qdrant

    path = _switch(built_index, corpus_copy, tmp_path / "idx", encoder, "qdrant-memory")
    live = Index.load(path).manifest["backend"]["physical"]

    def boom(self):
        raise RuntimeError("connection reset")

    monkeypatch.setattr(qdrant.ClusterStore, "finish", boom)
    with pytest.raises(RuntimeError, match="connection reset"):
        build_index(corpus_copy, path, encoder=encoder, rebuild=True, progress=False, log=_quiet)
    monkeypatch.undo()
    index = Index.load(path)
    assert index.manifest["backend"]["physical"] == live
    from qa.engines.qdrant_transport import connect

    names = {c.name for c in connect(":memory:").get_collections().collections}
    assert live in names and not any(n.startswith(live.rsplit("-", 2)[0]) and n != live for n in names)  # nothing half-built left
    backend = open_backend(index)
    assert backend.store.count() == len(index.rows)
    assistant = Assistant(index, config=RetrievalConfig(), encoder=encoder)
    assert assistant.ask("Quel pays a acheté des drones Bayraktar ?").citations[0].doc_id == "ijd-elargissement-balkans-securite"


def test_cluster_update_removes_points_a_failed_update_left(built_index, corpus_copy, tmp_path, encoder, monkeypatch):
    """Points written by an update that died are not in the live version; the next update
    deletes them (removals come from the collection itself)."""
    from qa.engines import qdrant

    path = _switch(built_index, corpus_copy, tmp_path / "idx", encoder, "qdrant-memory")
    (corpus_copy / "new-note.md").write_text("# Note\n\nLe projet Horizons Partagés vise la jeunesse.\n", encoding="utf-8")
    monkeypatch.setattr(qdrant.ClusterStore, "finish", lambda self: (_ for _ in ()).throw(RuntimeError("timeout")))
    with pytest.raises(RuntimeError):
        build_index(corpus_copy, path, encoder=encoder, progress=False, log=_quiet)
    monkeypatch.undo()
    index = Index.load(path)
    store = open_backend(index).store
    assert store.count() > len(index.rows)  # the dead update's point is there, unknown to the live version
    (corpus_copy / "new-note.md").unlink()
    (corpus_copy / "otan-relations-serbie.txt").write_text(
        (corpus_copy / "otan-relations-serbie.txt").read_text(encoding="utf-8") + "\nUne phrase ajoutée.\n", encoding="utf-8"
    )
    build_index(corpus_copy, path, encoder=encoder, progress=False, log=_quiet)
    index = Index.load(path)
    assert open_backend(index).store.count() == len(index.rows)
