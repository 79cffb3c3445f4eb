"""Shared fixtures: the real bundled corpus indexed once with the real default encoder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def shared_embedding_cache(tmp_path_factory):
    """One embedding cache for every index the suite builds (the real e5 encoder embeds
    each text once per session, not once per test); tests of the cache itself unset it."""
    path = tmp_path_factory.mktemp("embeddings")
    previous = os.environ.get("QA_EMBEDDING_CACHE")
    os.environ["QA_EMBEDDING_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("QA_EMBEDDING_CACHE", None)
    else:
        os.environ["QA_EMBEDDING_CACHE"] = previous


ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


class RememberingEncoder:
    """The real default encoder, remembering each vector it computed this session (same
    id, same vectors): a test that builds its own index does not wait for e5 again."""

    def __init__(self, inner):
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self.query_threads, self.batch_threads = inner.query_threads, inner.batch_threads
        self._seen = {}

    def encode(self, texts, *, query=False):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if (t, query) not in self._seen]
        if todo:
            for text, vector in zip(todo, self.inner.encode(todo, query=query)):
                self._seen[(text, query)] = vector
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._seen[(t, query)] for t in texts])


@pytest.fixture(scope="session")
def real_encoder():
    from qa.encoders import E5Encoder

    return E5Encoder()


@pytest.fixture(scope="session")
def encoder(real_encoder):
    return RememberingEncoder(real_encoder)


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, encoder) -> Path:
    from qa.index import build_index

    path = tmp_path_factory.mktemp("index")
    build_index(CORPUS, path, encoder=encoder, progress=False, log=lambda m: None)
    return path


@pytest.fixture(scope="session")
def assistant(built_index, encoder):
    from qa import Assistant
    from qa.config import RetrievalConfig

    return Assistant.open(built_index, config=RetrievalConfig(), encoder=encoder)


class CountingEncoder:
    """The real encoder, counting what it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.id, self.dim = inner, inner.id, inner.dim
        self.texts: list[str] = []

    def encode(self, texts, *, query=False):
        self.texts.extend(texts)
        return self.inner.encode(texts, query=query)


@pytest.fixture()
def counting_encoder(encoder):
    """Makes encoders that count the texts they embed (the session's real encoder inside)."""
    return lambda: CountingEncoder(encoder)


@pytest.fixture()
def corpus_copy(tmp_path) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture(scope="session")
def documents():
    from qa.corpus import load_corpus

    return load_corpus(CORPUS, warn=lambda m: None)
