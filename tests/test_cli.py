"""The `qa` command through main([...]): exit codes, messages, batch JSONL."""

import json

import pytest

from qa.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main


def _ask(built_index, *args):
    return main(["ask", "--index", str(built_index), *args])


def test_ask_prints_answer_and_numbered_citations(built_index, capsys):
    assert _ask(built_index, "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?", "-k", "2") == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("Answer: ") and "[1] L'élargissement aux Balkans" in out and "[2]" in out
    assert ">>>" in out and "p. 4" in out


def test_ask_json_schema(built_index, capsys):
    assert _ask(built_index, "When was NATO's liaison office in Belgrade established?", "--json") == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert {"question", "language", "abstained", "answer", "citations", "timings_ms"} <= set(data)
    citation = data["citations"][0]
    assert {"rank", "doc_id", "title", "language", "start", "end", "spans", "page", "text", "score", "evidence"} <= set(citation)
    assert set(citation["evidence"]) == {"start", "end", "text"}


def test_abstention_is_said(built_index, capsys):
    assert _ask(built_index, "What is the capital of Australia?") == EXIT_OK
    out = capsys.readouterr().out
    assert "do not answer this question (no passage is close enough" in out and "Australia appears nowhere" in out and "related" in out


@pytest.mark.parametrize(
    "args, code, message",
    [
        ([""], EXIT_ERROR, "question is empty"),
        (["   "], EXIT_ERROR, "question is empty"),
        (["x" * 2001], EXIT_ERROR, "limit is 2000"),
        (["ok", "-k", "0"], EXIT_USAGE, "between 1 and 50"),
        (["ok", "-k", "51"], EXIT_USAGE, "between 1 and 50"),
        (["ok", "-k", "five"], EXIT_USAGE, "whole number"),
        (["ok", "--doc", "nope"], EXIT_ERROR, "unknown document"),
        ([], EXIT_ERROR, "no question"),
    ],
)
def test_bad_input(built_index, capsys, args, code, message):
    assert _ask(built_index, *args) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") <= 2


def test_batch_reports_bad_lines_and_answers_the_rest(built_index, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text(
        '{"id": "a", "question": "Quel pays a acheté des drones Bayraktar ?"}\n'
        "{not json\n"
        '{"id": "c", "question": ""}\n'
        '{"id": "d", "question": "What is the capital of Australia?"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "a.jsonl"
    assert _ask(built_index, "--input", str(src), "--output", str(out), "-k", "3") == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "q.jsonl:2:" in err and "q.jsonl:3:" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "d"]
    assert rows[0]["citations"] and len(rows[0]["citations"]) <= 3 and rows[1]["abstained"]
    for key in ("question", "language", "abstained", "answer", "timings_ms", "citations"):
        assert key in rows[0]


def test_batch_all_good_exits_zero(built_index, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text('{"id": 1, "question": "Serbie OTAN"}\n', encoding="utf-8")
    assert _ask(built_index, "--input", str(src), "--output", str(tmp_path / "o.jsonl")) == EXIT_OK


def test_index_empty_corpus_is_an_error(tmp_path, capsys):
    (tmp_path / "corpus").mkdir()
    assert main(["index", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "idx")]) == EXIT_ERROR
    assert "no readable document" in capsys.readouterr().err


def test_ask_builds_a_missing_index_first(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("Le Bureau de liaison de l'OTAN à Belgrade a été établi en décembre 2006.\n", encoding="utf-8")
    idx = tmp_path / "idx"
    assert main(["ask", "--index", str(idx), "--corpus", str(corpus), "Quand le bureau de liaison a-t-il été établi ?"]) == EXIT_OK
    captured = capsys.readouterr()
    assert "building it" in captured.err and "décembre 2006" in captured.out


def test_index_then_up_to_date(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Un document.\n", encoding="utf-8")
    args = ["index", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--quiet"]
    assert main(args) == EXIT_OK and "rebuilt" in capsys.readouterr().out
    assert main(args) == EXIT_OK and "up to date" in capsys.readouterr().out


def test_chat_loop(built_index, monkeypatch, capsys):
    questions = iter(["Quel pays a acheté des drones Bayraktar ?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(questions))
    assert main(["chat", "--index", str(built_index)]) == EXIT_OK
    assert "Bayraktar" in capsys.readouterr().out


def test_batch_line_that_is_not_utf8_is_reported(built_index, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_bytes(b'{"id": 1, "question": "Serbie OTAN"}\n{"id": 2, "question": "caf\xe9"}\n')
    out = tmp_path / "o.jsonl"
    assert _ask(built_index, "--input", str(src), "--output", str(out)) == EXIT_PARTIAL
    assert "q.jsonl:2:" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 1


def test_unwritable_output_is_one_line(built_index, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text('{"id": 1, "question": "Serbie"}\n', encoding="utf-8")
    assert _ask(built_index, "--input", str(src), "--output", str(tmp_path / "missing-dir" / "o.jsonl")) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("qa: error:") and err.count("\n") == 1


def test_remove_lists_and_restores_a_document(built_index, corpus_copy, tmp_path, capsys):
    import shutil

    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    where = ["--corpus", str(corpus_copy), "--index", str(index)]
    original = (corpus_copy / "otan-relations-serbie.txt").read_bytes()
    assert main(["remove", "otan-relations-serbie", *where]) == EXIT_OK
    out = capsys.readouterr().out
    assert "qa restore otan-relations-serbie" in out and "removed 1 documents" in out
    assert not (corpus_copy / "otan-relations-serbie.txt").exists()
    assert main(["restore", *where]) == EXIT_OK
    [line] = capsys.readouterr().out.splitlines()
    removal_id, doc_id, path, _ = line.split("\t")
    assert (doc_id, path) == ("otan-relations-serbie", "otan-relations-serbie.txt")
    assert main(["restore", removal_id, *where]) == EXIT_OK
    assert "added 1" in capsys.readouterr().out
    assert (corpus_copy / "otan-relations-serbie.txt").read_bytes() == original
    assert main(["ask", "--index", str(index), "Quand la Serbie a-t-elle rejoint le Partenariat pour la paix ?", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["citations"][0]["doc_id"] == "otan-relations-serbie"
    assert main(["restore", "otan-relations-serbie", *where]) == EXIT_ERROR
    assert "no removed document 'otan-relations-serbie'" in capsys.readouterr().err
