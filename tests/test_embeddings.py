"""The embedding cache: by (encoder id, text hash), inside the index directory."""

import numpy as np

from qa.config import ChunkingConfig
from qa.embeddings import EmbeddingCache, embed, text_key
from qa.index import Index, build_index


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(
        "# La Serbie et l'OTAN\n\nLa Serbie a adhéré au Partenariat pour la paix en 2006. "
        "Le bureau de liaison militaire a été établi à Belgrade. "
        "La coopération s'est intensifiée à partir de 2015 avec un plan d'action individuel.\n",
        encoding="utf-8",
    )
    (corpus / "b.txt").write_text(
        "France contributes to KFOR. It leads the strategic command of the mission. Cyber security is a strong part of it.\n",
        encoding="utf-8",
    )
    return corpus


def test_rebuild_and_settings_change_reuse_cached_vectors(tmp_path, counting_encoder, monkeypatch):
    monkeypatch.delenv("QA_EMBEDDING_CACHE", raising=False)  # the index's own cache
    corpus, path = _corpus(tmp_path), tmp_path / "index"
    counting = counting_encoder()
    first = build_index(corpus, path, encoder=counting, progress=False, log=lambda m: None)
    assert first.embedded_texts == len(counting.texts) > 0 and first.cached_texts == 0
    assert list((path / "embeddings").iterdir())  # inside the index directory
    vectors = np.asarray(Index.load(path).vectors).copy()

    counting.texts.clear()
    again = build_index(corpus, path, encoder=counting, rebuild=True, progress=False, log=lambda m: None)
    assert again.rebuilt and again.embedded_texts == 0 and counting.texts == []
    assert "texts embedded 0," in again.summary()
    assert np.array_equal(np.asarray(Index.load(path).vectors), vectors)  # same vectors as embedded

    # Shorter passages: new passage texts, the same sentences; only the passages are embedded.
    changed = build_index(corpus, path, encoder=counting, chunking=ChunkingConfig(target_chars=120), progress=False, log=lambda m: None)
    assert changed.rebuilt and 0 < changed.embedded_texts < first.embedded_texts
    assert changed.embedded_texts <= changed.chunks  # passages only: every sentence came from the cache


def test_cache_segments_round_trip_and_damage_is_a_miss(tmp_path, encoder):
    cache = EmbeddingCache(tmp_path, encoder.id, encoder.dim)
    texts = ["Bonjour", "Hello", "Bonjour"]
    vectors = embed(encoder, texts, cache=cache)
    assert np.array_equal(vectors[0], vectors[2])
    cache.save()
    reread = EmbeddingCache(tmp_path, encoder.id, encoder.dim)
    got, missing = reread.get([text_key(t) for t in texts])
    assert missing == [] and np.array_equal(got, vectors)
    # Another encoder id has its own cache.
    assert EmbeddingCache(tmp_path, "other", encoder.dim).get([text_key("Hello")])[1] == [0]
    # A truncated segment is ignored: a cache miss, not an error.
    for vectors_file in reread.dir.glob("*.vectors.npy"):
        vectors_file.write_bytes(vectors_file.read_bytes()[:100])
    assert EmbeddingCache(tmp_path, encoder.id, encoder.dim).get([text_key("Hello")])[1] == [0]
