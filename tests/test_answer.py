"""Answers on the real corpus with the real default encoder."""

import pytest

from qa.cleaning import apply_edits
from qa.errors import InputError


def test_bayraktar_question_cites_the_ijd_passage_about_bosnia_first(assistant):
    answer = assistant.ask("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?")
    assert not answer.abstained and answer.language == "fr"
    first = answer.citations[0]
    assert first.doc_id == "ijd-elargissement-balkans-securite"
    assert "Bosnie-Herzégovine" in first.text and "Bayraktar" in first.evidence.text
    assert answer.answer == first.evidence.text


# English questions answered only in French documents: tests/test_backends.py, on every engine.


def test_unanswerable_question_abstains_but_lists_related(assistant):
    answer = assistant.ask("What is the capital of Australia?")
    assert answer.abstained and answer.citations == [] and answer.answer == ""
    assert answer.related


def test_citation_offsets_are_exact(assistant, documents):
    raw = {d.doc_id: d for d in documents}
    from qa.chunking import clean_document

    answer = assistant.ask("Quelle est la politique de neutralité militaire de la Serbie ?", k=5)
    for c in answer.citations:
        cleaned = clean_document(raw[c.doc_id])
        assert cleaned.rebuild(c.spans) == c.text
        assert apply_edits(cleaned.raw, cleaned.edits, c.evidence.start, c.evidence.end) == c.evidence.text
        assert c.start <= c.evidence.start < c.evidence.end <= c.end


def test_filters_and_k(assistant):
    answer = assistant.ask("Balkans occidentaux", k=3, lang="en")
    assert len(answer.citations + answer.related) <= 3
    assert all(c.language == "en" for c in answer.citations + answer.related)
    answer = assistant.ask("coopération", doc="otan-relations-serbie", mode="bm25")
    assert all(c.doc_id == "otan-relations-serbie" for c in answer.citations + answer.related)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"question": ""}, "empty"),
        ({"question": "   \n"}, "empty"),
        ({"question": "x" * 2001}, "limit is 2000"),
        ({"question": "ok", "k": 0}, "between 1 and 50"),
        ({"question": "ok", "k": 51}, "between 1 and 50"),
        ({"question": "ok", "mode": "fuzzy"}, "mode must be one of"),
        ({"question": "ok", "lang": "de"}, "lang must be one of"),
        ({"question": "ok", "doc": "nope"}, "unknown document"),
    ],
)
def test_bad_input(assistant, kwargs, message):
    with pytest.raises(InputError, match=message):
        assistant.ask(**kwargs)


def test_ask_many(assistant):
    answers = assistant.ask_many(["Quel pays a acheté des drones Bayraktar ?", "What is the capital of Australia?"])
    assert [a.abstained for a in answers] == [False, True]
