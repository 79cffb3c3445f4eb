"""Answers on the real corpus with the real default encoder."""

import pytest

from qa.cleaning import apply_edits
from qa.errors import InputError

# The Bayraktar question, English questions answered only in French documents, abstention
# and filters: tests/test_backends.py, on every engine.


def test_citation_offsets_are_exact(assistant, documents):
    raw = {d.doc_id: d for d in documents}
    from qa.chunking import clean_document

    answer = assistant.ask("Quelle est la politique de neutralité militaire de la Serbie ?", k=5)
    for c in answer.citations:
        cleaned = clean_document(raw[c.doc_id])
        assert cleaned.rebuild(c.spans) == c.text
        assert apply_edits(cleaned.raw, cleaned.edits, c.evidence.start, c.evidence.end) == c.evidence.text
        assert c.start <= c.evidence.start < c.evidence.end <= c.end


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
