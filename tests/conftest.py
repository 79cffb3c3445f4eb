"""Shared fixtures: the real bundled corpus indexed once with the real default encoder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def encoder():
    from qa.encoders import USEEncoder

    return USEEncoder()


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


@pytest.fixture()
def corpus_copy(tmp_path) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture(scope="session")
def documents():
    from qa.corpus import load_corpus

    return load_corpus(CORPUS, warn=lambda m: None)
