"""Ray batch work (qa.distributed): the real encoder on a real local Ray, whose results
must equal the single-process ones."""

import json
from pathlib import Path

import numpy as np
import pytest
import ray

from qa.cli import EXIT_ERROR, EXIT_PARTIAL, main
from qa.config import DEFAULT_MODEL, RetrievalConfig
from qa.distributed import RayEncoder, _check_reachable, _root_message, answer_batch
from qa.errors import InputError, QAError
from qa.index import Index

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("fr-drones", "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?"),
    ("en-liaison", "When was NATO's liaison office in Belgrade established?"),
    (3, "Quelle est la position de la Serbie vis-à-vis de l'OTAN ?"),
    ("en-strategy", "What does the Western Balkans strategy say about enlargement?"),
    ("fr-pe", "Que dit le Parlement européen sur les partenariats de sécurité et de défense ?"),
    ("en-kosovo", "What is KFOR's role in Kosovo?"),
    ("fr-russie", "Quelle influence la Russie exerce-t-elle dans les Balkans ?"),
    ("unanswerable", "What is the capital of Australia?"),
    ("empty", "   "),
    ("en-serbia", "Serbia military neutrality"),
]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False)  # never a cluster left running here
    yield
    ray.shutdown()


def _without_timings(record: dict) -> dict:
    return {key: value for key, value in record.items() if key != "timings_ms"}


def test_ray_index_equals_single_process_index(built_index, tmp_path, capsys):
    ray_dir = tmp_path / "ray-index"
    assert main(["index", "--ray", "--corpus", str(CORPUS), "--index", str(ray_dir), "--quiet"]) == 0
    assert "rebuilt: 5 documents" in capsys.readouterr().out
    single, distributed = Index.load(built_index), Index.load(ray_dir)
    assert [c.id for c in distributed.chunks] == [c.id for c in single.chunks]
    assert distributed.manifest["encoder"] == single.manifest["encoder"]
    assert distributed.vectors.shape == single.vectors.shape
    assert distributed.sentence_vectors.shape == single.sentence_vectors.shape
    chunk_diff = np.abs(np.asarray(distributed.vectors, np.float32) - np.asarray(single.vectors, np.float32)).max()
    sentence_diff = np.abs(np.asarray(distributed.sentence_vectors, np.float32) - np.asarray(single.sentence_vectors, np.float32)).max()
    print(f"max |ray - single|: chunks {chunk_diff:.2e}, sentences {sentence_diff:.2e}")
    assert chunk_diff <= 1e-5 and sentence_diff <= 1e-5


def test_ray_encoder_keeps_input_order_across_small_batches(encoder):
    texts = [f"Phrase numéro {i} sur l'OTAN et la Serbie." for i in range(23)][::-1]
    ray_encoder = RayEncoder(DEFAULT_MODEL, actors=2, batch_size=2)  # 12 batches over 2 actors
    assert (ray_encoder.id, ray_encoder.dim) == (encoder.id, encoder.dim)
    vectors = ray_encoder.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (23, encoder.dim)
    assert np.abs(vectors - encoder.encode(texts)).max() <= 1e-5
    assert ray_encoder.encode([]).shape == (0, encoder.dim)


def test_answer_batch_equals_single_process_answers(built_index, assistant):
    records = answer_batch(built_index, QUESTIONS, config=RetrievalConfig(), actors=2)
    expected = []
    for qid, question in QUESTIONS:
        try:
            expected.append({"id": qid, **assistant.ask(question).to_dict()})
        except InputError as exc:
            expected.append({"id": qid, "error": str(exc)})
    assert [r["id"] for r in records] == [qid for qid, _ in QUESTIONS]
    assert [_without_timings(r) for r in records] == [_without_timings(r) for r in expected]
    by_id = {r["id"]: r for r in records}
    assert "question is empty" in by_id["empty"]["error"]
    assert by_id["unanswerable"]["abstained"] and not by_id["fr-drones"]["abstained"]
    assert answer_batch(built_index, []) == []


def test_cli_batch_with_ray_writes_the_single_process_records(built_index, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    lines = [json.dumps({"id": qid, "question": q}, ensure_ascii=False) for qid, q in QUESTIONS[:4]]
    lines[2:2] = ["{not json", '{"question": "Quel rôle joue la KFOR au Kosovo ?"}', '{"id": "e", "question": ""}']
    src.write_text("\n".join([*lines, json.dumps({"id": "u", "question": QUESTIONS[7][1]})]) + "\n", encoding="utf-8")
    single_out, ray_out = tmp_path / "single.jsonl", tmp_path / "ray.jsonl"
    base = ["ask", "--index", str(built_index), "--input", str(src), "-k", "3"]

    assert main([*base, "--output", str(single_out)]) == EXIT_PARTIAL
    single_err = capsys.readouterr().err
    assert main([*base, "--output", str(ray_out), "--ray"]) == EXIT_PARTIAL
    ray_err = capsys.readouterr().err

    def records(path):
        return [_without_timings(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]

    assert [r["id"] for r in records(ray_out)] == ["fr-drones", "en-liaison", 4, 3, "en-strategy", "u"]
    assert records(ray_out) == records(single_out)
    assert "q.jsonl:3: skipped" in ray_err and "q.jsonl:5: skipped" in ray_err
    assert [line for line in ray_err.splitlines() if line.startswith("qa:")] == [
        line for line in single_err.splitlines() if line.startswith("qa:")
    ]


def test_ray_needs_a_batch(built_index, capsys):
    assert main(["ask", "--index", str(built_index), "--ray", "Serbie OTAN"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--input FILE --output FILE" in err and err.count("\n") == 1


def test_unreachable_address_fails_fast_in_one_line():
    with pytest.raises(QAError, match=r"no Ray cluster answers at 127\.0\.0\.1:1 .*ray start --head"):
        _check_reachable("127.0.0.1:1")


def test_worker_failures_come_back_as_their_own_one_line_message():
    trace = 'Traceback:\n  File "x.py"\nqa.errors.InputError: unknown document: pick one\n\nray.exceptions.UserCodeException: UDF failed'
    assert _root_message(RuntimeError(trace)) == "unknown document: pick one"
    assert _root_message(RuntimeError("  File y\nKeyError: 'backend'\nray.exceptions.RayTaskError: wrapped")) == "KeyError: 'backend'"
    wrapped = RuntimeError("ray wrapper")
    wrapped.cause = QAError("model missing: reinstall it")  # as RayTaskError.cause
    assert _root_message(wrapped) == "model missing: reinstall it"
