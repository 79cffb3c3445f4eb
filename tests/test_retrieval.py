import pytest

from qa.retrieval import Where, open_backend, retrieve, rrf


def test_rrf_by_hand():
    fused = rrf({"bm25": ["d1", "d2", "d3"], "dense": ["d3", "d1"]}, k=60)
    assert fused["d1"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["d3"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["d2"] == pytest.approx(1 / 62)


def test_weighted_rrf_by_hand():
    fused = rrf({"bm25": ["a", "b"], "dense": ["b", "a"]}, weights={"bm25": 2.0, "dense": 0.5}, k=10)
    assert fused["a"] == pytest.approx(2 / 11 + 0.5 / 12)
    assert fused["b"] == pytest.approx(2 / 12 + 0.5 / 11)
    assert rrf({"bm25": ["a"], "dense": ["b"]}, weights={"dense": 0})["a"] > 0
    assert "b" not in rrf({"bm25": ["a"], "dense": ["b"]}, weights={"dense": 0})


@pytest.fixture(scope="module")
def backend(assistant):
    return open_backend(assistant.index)


def _rows(hits):
    return [h.row for h in hits]


def test_modes(assistant, backend, encoder):
    q = "drones Bayraktar Turquie"
    qvec = encoder.encode([q])[0]
    bm25 = retrieve(backend, None, q, "fr", mode="bm25")
    dense = retrieve(backend, qvec, q, "fr", mode="dense")
    hybrid = retrieve(backend, qvec, q, "fr", mode="hybrid")
    assert bm25 and dense and hybrid
    assert all(h.dense_rank is None for h in bm25)
    assert all(h.bm25_rank is None for h in dense)
    assert set(_rows(hybrid)) == set(_rows(bm25)) | set(_rows(dense))
    top = assistant.index.chunks[hybrid[0].row]
    assert "Bayraktar" in top.text


def test_filters(assistant, backend, encoder):
    chunks = assistant.index.chunks
    q = "French strategy for the Western Balkans"
    qvec = encoder.encode([q])[0]
    hits = retrieve(backend, qvec, q, "en", where=Where(lang="en"))
    assert hits and all(chunks[h.row].lang == "en" for h in hits)
    hits = retrieve(backend, qvec, q, "en", where=Where(doc="otan-relations-serbie"))
    assert hits and all(chunks[h.row].doc_id == "otan-relations-serbie" for h in hits)
    assert retrieve(backend, qvec, q, "en", where=Where(lang="en", doc="otan-relations-serbie")) == []


def test_convex_fusion_by_hand():
    from qa.retrieval import convex, minmax

    assert minmax({"a": 0.8, "b": 0.9, "c": 0.85}) == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    # dense a 0.9 -> 1, b 0.8 -> 0; BM25 b 4.0 -> 1, c 2.0 -> 0.5 (a and c: 0 where not found).
    fused = convex({"a": 0.9, "b": 0.8}, {"b": 4.0, "c": 2.0}, {"a": 0.2, "b": 0.2, "c": 0.1})
    assert fused == pytest.approx({"a": 0.8 * 1.0, "b": 0.2 * 1.0, "c": 0.1 * 0.5})
