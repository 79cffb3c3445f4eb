"""Evaluation: normalisation, validation, metrics by hand, TREC output checked with ranx."""

import json
from types import SimpleNamespace

import pytest

from qa.cli import main
from qa.errors import InputError
from qa.evaluate import (
    EvalQuestion,
    Expected,
    QuestionResult,
    calibrate,
    load_eval_set,
    metrics,
    normalise,
    write_threshold,
)


def test_normalise_survives_recleaning():
    assert normalise("poli-\ntique de I'Union") == normalise("politique de l’Union")
    assert normalise("établi  en\ndécembre 2006") == normalise("Etabli en Décembre 2006")
    assert normalise("l'UE®.") == normalise("l’UE")


def _write(tmp_path, lines):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x for x in lines) + "\n", encoding="utf-8")
    return path


DOCS = {"otan": "Le Bureau de liaison militaire de l’OTAN à Belgrade, établi en\ndécembre 2006, apporte son soutien."}


def test_valid_set_loads(tmp_path):
    path = _write(
        tmp_path,
        [
            {"id": "a", "question": "Quand ?", "expected": [{"doc_id": "otan", "quote": "établi en décembre 2006"}], "tags": ["fr→fr"]},
            {"id": "b", "question": "Quoi ?", "expected": [{"doc_id": "otan"}]},
            {"id": "c", "question": "Capitale de l'Australie ?", "expected": []},
        ],
    )
    qs = load_eval_set(path, DOCS)
    assert [q.answerable for q in qs] == [True, True, False]
    assert qs[0].expected[0].matches("otan", "… établi en décembre 2006 …")
    assert qs[1].expected[0].matches("otan", "anything") and not qs[1].expected[0].matches("other", "x")


@pytest.mark.parametrize(
    "line, message",
    [
        ({"id": "x", "question": "Q ?", "expected": [{"doc_id": "nope", "quote": "x"}]}, r"set.jsonl:2: unknown doc_id 'nope'"),
        (
            {"id": "x", "question": "Q ?", "expected": [{"doc_id": "otan", "quote": "établi en 2007"}]},
            r"set.jsonl:2: quote 'établi en 2007' is not in document 'otan'",
        ),
        ("{broken", r"set.jsonl:2: not valid JSON"),
        ({"id": "x", "question": "", "expected": []}, r"set.jsonl:2: each line needs a non-empty"),
        ({"id": "x", "question": "Q ?"}, r"set.jsonl:2: \"expected\" must be a list"),
        ({"id": "a", "question": "Q ?", "expected": []}, r"set.jsonl:2: duplicate id 'a'"),
    ],
)
def test_invalid_lines_are_named(tmp_path, line, message):
    path = _write(tmp_path, [{"id": "a", "question": "Q ?", "expected": []}, line])
    with pytest.raises(InputError, match=message):
        load_eval_set(path, DOCS)


def _result(qid, expected, ranks_docs, abstained=False, support=0.5, evidence_ok=False):
    q = EvalQuestion(qid, "?", tuple(expected))
    ranked = [
        SimpleNamespace(
            rank=i + 1, chunk_id=f"{qid}-{i}", doc_id=d, text=t, evidence=SimpleNamespace(text=t if evidence_ok and i == 0 else "")
        )
        for i, (d, t) in enumerate(ranks_docs)
    ]
    from qa.evaluate import _first_match

    r = QuestionResult(q, ranked, abstained, support, 10.0, "fr")
    if q.answerable:
        r.passage_rank = _first_match(q, ranked)
        r.doc_rank = next((c.rank for c in ranked if c.doc_id in {e.doc_id for e in expected}), None)
        r.evidence_hit = bool(ranked) and _first_match(q, ranked[:1], evidence=True) == 1
    return r


def test_metrics_by_hand():
    e = [Expected("d", "needle")]
    results = [
        _result("q1", e, [("d", "a needle here"), ("x", "")], evidence_ok=True),  # rank 1
        _result("q2", e, [("x", ""), ("d", "no"), ("d", "needle")]),  # rank 3, doc rank 2
        _result("q3", e, [("x", "")] * 10, abstained=True),  # miss
        _result("q4", [], [("x", "")], abstained=True),
        _result("q5", [], [("x", "")]),
    ]
    m = metrics(results, k=10)
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@5"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["doc@1"] == pytest.approx(1 / 3) and m["doc@5"] == pytest.approx(2 / 3)
    assert m["evidence@1"] == pytest.approx(1 / 3)
    assert m["abstention_recall"] == 0.5 and m["false_abstention"] == pytest.approx(1 / 3)


def test_calibrate_by_hand(tmp_path):
    e = [Expected("d")]
    results = [_result(f"a{i}", e, [("d", "")], support=s) for i, s in enumerate([0.5, 0.6, 0.7, 0.8])]
    results += [_result(f"u{i}", [], [("d", "")], support=s) for i, s in enumerate([0.2, 0.3, 0.55])]
    cal = calibrate(results, max_false_abstention=0.0)
    assert cal.threshold == pytest.approx(0.4) and cal.abstention_recall == pytest.approx(2 / 3) and cal.false_abstention == 0
    cal = calibrate(results, max_false_abstention=0.25)
    assert cal.threshold == pytest.approx(0.575) and cal.abstention_recall == 1.0
    # Scores closer than the 4 decimals kept: the threshold written must still keep the
    # answerable question above it (rounding 0.78716 to nearest gave 0.7872 > 0.78718).
    close = [_result("a", e, [("d", "")], support=0.78718), _result("b", e, [("d", "")], support=0.9)]
    close += [_result("u", [], [("d", "")], support=0.78714), _result("v", [], [("d", "")], support=0.5)]
    cal = calibrate(close, max_false_abstention=0.0)
    assert cal.false_abstention == 0 and 0.78718 >= cal.threshold and cal.abstention_recall == 0.5
    config = tmp_path / "qa.toml"
    config.write_text("[chunking]\ntarget_chars = 500\n", encoding="utf-8")
    write_threshold(config, 0.4)
    from qa.config import load_config

    loaded = load_config(config)
    assert loaded.retrieval.abstain_threshold == 0.4 and loaded.chunking.target_chars == 500


def test_eval_cli_compare_trec_and_ranx_agree(built_index, tmp_path, capsys):
    import ranx

    path = tmp_path / "set.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(x, ensure_ascii=False)
            for x in [
                {
                    "id": "b1",
                    "question": "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?",
                    "expected": [{"doc_id": "ijd-elargissement-balkans-securite", "quote": "drones Bayraktar"}],
                    "tags": ["fr→fr"],
                },
                {
                    "id": "b2",
                    "question": "When was NATO's military liaison office in Belgrade established?",
                    "expected": [{"doc_id": "otan-relations-serbie", "quote": "établi en décembre 2006"}],
                    "tags": ["en→fr"],
                },
                {
                    "id": "b3",
                    "question": "How many votes did the European Parliament resolution on defence partnerships get?",
                    "expected": [{"doc_id": "pe-partenariats-securite-defense", "quote": "440 voix pour"}],
                    "tags": ["en→fr"],
                },
                {"id": "b4", "question": "What is the capital of Australia?", "expected": [], "tags": ["en→none"]},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    run, out = tmp_path / "run.trec", tmp_path / "figures.json"
    code = main(["eval", str(path), "--index", str(built_index), "--corpus", "corpus", "--compare", "--trec", str(run), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "variant" in printed and "bm25" in printed and "dense" in printed and "hybrid" in printed
    assert "lang en→fr" in printed and "lang fr→fr" in printed
    ours = json.loads(out.read_text())["variants"]["hybrid"]
    qrels = ranx.Qrels.from_file(str(run) + ".qrels", kind="trec")
    theirs = ranx.evaluate(qrels, ranx.Run.from_file(str(run), kind="trec"), ["hit_rate@1", "hit_rate@5", "mrr@10", "ndcg@10"])
    assert theirs["hit_rate@1"] == pytest.approx(ours["hit@1"])
    assert theirs["hit_rate@5"] == pytest.approx(ours["hit@5"])
    assert theirs["mrr@10"] == pytest.approx(ours["mrr@10"])
    assert theirs["ndcg@10"] == pytest.approx(ours["ndcg@10"])


def test_fail_under(built_index, tmp_path, capsys):
    path = tmp_path / "set.jsonl"
    path.write_text(
        json.dumps({"id": "x", "question": "Quel pays a acheté des drones Bayraktar ?", "expected": [{"doc_id": "otan-relations-serbie"}]})
        + "\n",
        encoding="utf-8",
    )
    base = ["eval", str(path), "--index", str(built_index), "--corpus", "corpus"]
    assert main(base + ["--fail-under", "hit@1=0.5"]) == 1
    assert "FAIL: hit@1 0.000 < 0.5" in capsys.readouterr().err
    assert main(base + ["--fail-under", "latency_p50_ms=100000"]) == 0
    assert main(base + ["--fail-under", "nonsense=1"]) == 1
    assert main(base + ["--fail-under", "hit@1"]) == 1
