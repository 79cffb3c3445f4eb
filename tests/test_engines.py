"""The engine registry and the default engine (FAISS + bm25s); every engine's search
contract is in ``test_backends.py``."""

import numpy as np
import pytest

from qa.engines import engine_names, get_engine, register
from qa.engines.local import LocalBackend
from qa.errors import InputError


def test_builtin_engines_are_found_by_name():
    assert {"faiss", "qdrant-edge", "qdrant"} <= set(engine_names())
    assert get_engine("faiss").name == "faiss"
    assert get_engine("faiss").options(None, None, None) == {"type": "faiss"}
    assert get_engine("qdrant").options("http://h:6333", None, None) == {"type": "qdrant", "url": "http://h:6333", "collection": "qa"}


def test_an_unknown_engine_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(InputError, match=r"unknown backend 'elastic': use one of faiss, qdrant-edge, qdrant"):
        get_engine("elastic")


def test_a_registered_engine_is_found(monkeypatch):
    from qa.engines import base

    class Dummy:
        name = "dummy"

    monkeypatch.setattr(base, "_ENGINES", dict(base._ENGINES))
    engine = register(Dummy())
    assert get_engine("dummy") is engine and "dummy" in engine_names()


def test_an_update_keeps_the_cluster_options_only_when_no_engine_is_named():
    from qa.index import backend_spec

    live = {"type": "qdrant", "url": "http://h:6333", "collection": "c", "physical": "c-1"}
    assert backend_spec(None, None, None, live) == {"type": "qdrant", "url": "http://h:6333", "collection": "c"}
    with pytest.raises(InputError, match="needs the cluster's address"):
        backend_spec("qdrant", None, None, live)
    assert backend_spec(None, None, None, None) == {"type": "faiss"}
    with pytest.raises(InputError, match="--url and --collection are for --backend qdrant, not qdrant-edge"):
        backend_spec(None, "http://h:6333", None, {"type": "qdrant-edge"})


def test_bm25s_agrees_with_rank_bm25_reference(assistant):
    """bm25s (the engine) against rank-bm25 (the reference implementation) on the corpus."""
    from rank_bm25 import BM25Okapi

    from qa.analysis import analyse
    from qa.chunking import indexed_text
    from qa.engines import BM25_B, BM25_K1

    chunks = assistant.index.chunks
    corpus = [analyse(indexed_text(c), c.lang) or [""] for c in chunks]
    reference = BM25Okapi(corpus, k1=BM25_K1, b=BM25_B)  # the engine's parameters
    backend = LocalBackend(assistant.index)  # the default engine of the session's index
    for q in [
        "drones Bayraktar Turquie",
        "neutralité militaire Serbie",
        "Partenariat pour la paix 2006",
        "facilité européenne pour la paix",
        "stratégie française Balkans occidentaux",
    ]:
        tokens = analyse(q, "fr")
        ours = [row for row, _ in backend.lexical_tokens(tokens, 3, None)]
        theirs = list(np.argsort(-reference.get_scores(tokens), kind="stable")[:3])
        assert ours[0] == theirs[0], q
        assert len(set(ours) & set(theirs)) >= 2, q
