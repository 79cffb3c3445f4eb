import bm25s

from qa.analysis import analyse, cognates, detect_language
from qa.sentences import split_sentences


def test_french_elision_and_stemming_meet():
    assert analyse("l'élargissement", "fr") == analyse("élargissements", "fr")
    assert analyse("d’adhésion", "fr") == analyse("adhésions", "fr")
    assert analyse("jusqu'à l'Union", "fr") == analyse("Union", "fr")


def test_french_accent_folding_matches_ocr_text_without_accents():
    assert analyse("sécurité", "fr") == analyse("securite", "fr")


def test_french_stopwords_dropped():
    assert analyse("le la les des et dans", "fr") == []


def test_english_stopwords_and_snowball():
    assert analyse("The countries were recognising", "en") == analyse("country recognise", "en")
    # A full list, as for French: pronouns, modals and prepositions are not terms.
    assert analyse("Can you tell me about my home from your side?", "en") == analyse("tell home side", "en")
    assert analyse("Who won the cup?", "en") == ["won", "cup"]  # "won" of "won't" in NLTK's list, a verb here
    assert analyse("I won't, they don't", "en") == []


def test_english_and_french_terms_of_one_root_meet_as_cognates():
    def meet(en: str, fr: str) -> bool:
        return bool(cognates(analyse(en, "en")) & cognates(analyse(fr, "fr")))

    assert meet("integrity", "intégrité") and meet("defence", "défense") and meet("military", "militaire")
    assert not meet("actually", "actuellement") and not meet("membership", "adhésion")


def test_bm25_finds_inflected_french_form():
    docs = ["Les élargissements successifs de l'Union.", "La neutralité militaire de la Serbie."]
    retriever = bm25s.BM25()
    retriever.index([analyse(d, "fr") for d in docs], show_progress=False)
    scores = retriever.get_scores(analyse("l'élargissement", "fr"))
    assert scores[0] > 0 and scores[1] == 0


def test_sentences_respect_french_and_english_abbreviations():
    text = "Selon M. Dabrowski, l'élan existe. Le rapport cite p. 12 et la fig. 3. The U.S. and Dr. Smith agree. Done."
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "Selon M. Dabrowski, l'élan existe.",
        "Le rapport cite p. 12 et la fig. 3.",
        "The U.S. and Dr. Smith agree.",
        "Done.",
    ]


def test_sentences_never_cross_a_line_break_and_keep_list_markers():
    text = "1. Présentation\nLa France agit. Elle soutient.\nII. Contribuer à la paix"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "1. Présentation",
        "La France agit.",
        "Elle soutient.",
        "II. Contribuer à la paix",
    ]


def test_french_question_mark_after_space_ends_sentence():
    text = "Règles ou accords ? Le défi de l'UE."
    assert [text[s:e] for s, e in split_sentences(text)] == ["Règles ou accords ?", "Le défi de l'UE."]


def test_query_language():
    assert detect_language("Quel pays a acheté des drones Bayraktar ?") == "fr"
    assert detect_language("Which country bought Bayraktar drones?") == "en"
    assert detect_language("What is the capital of Australia?") == "en"


def test_a_question_s_language_is_chosen_between_french_and_english():
    from qa.analysis import question_language

    long_fr = "Dans quel délai le propriétaire doit-il restituer le dépôt de garantie lorsque l'état des lieux de sortie est conforme ?"
    long_en = "According to the Delors paper, which country of the Western Balkans bought Bayraktar drones from Turkey in 2024?"
    assert question_language(long_fr) == "fr" and question_language(long_en) == "en"
    assert question_language("Which country bought Bayraktar drones?") == "en"
    # A document's text is still weighed against every language langdetect knows: a
    # German page is no French one, and its declared language stands.
    german = "Die Europäische Union unterstützt die Länder des westlichen Balkans auf ihrem Weg in die Union seit vielen Jahren."
    assert detect_language(german, prior="en") == "en"


def test_the_two_language_detector_agrees_with_the_full_one_on_every_eval_question():
    import json
    from pathlib import Path

    from qa.analysis import question_language

    root = Path(__file__).resolve().parent.parent / "eval"
    sets = ["seed.jsonl", "fresh.jsonl", "spf/questions.jsonl", "spf/paragraphs.jsonl"]
    questions = [json.loads(line)["question"] for f in sets for line in (root / f).read_text().splitlines() if line.strip()]
    assert len(questions) > 300
    assert [q for q in questions if question_language(q) != detect_language(q)] == []


def test_language_is_repeatable():
    text = "La Serbie maintient une politique de neutralité militaire et coopère avec l'OTAN depuis 2006."
    assert {detect_language(text) for _ in range(5)} == {"fr"}


def test_a_question_naming_a_source_names_its_document():
    from qa.analysis import named_documents, source_names

    docs = {
        "ijd": {"publisher": "Institut Jacques Delors", "aliases": ["Delors"]},
        "nato": {"publisher": "OTAN / NATO"},
        "mfa": {"publisher": "Ministère de l'Europe et des Affaires étrangères (France Diplomatie)"},
    }
    assert "IJD" in source_names(docs["ijd"]) and {"OTAN", "NATO"} <= set(source_names(docs["nato"]))
    assert named_documents("According to the Delors paper, what threatens Bosnia?", docs) == {"ijd"}
    assert named_documents("Que dit l'IJD de la Chine ?", docs) == {"ijd"}
    assert named_documents("Selon l'OTAN, la Serbie coopère-t-elle ?", docs) == {"nato"}
    assert named_documents("Que dit France Diplomatie ?", docs) == {"mfa"}
    # one word of a source's name is not its name: "France" alone names nothing
    assert named_documents("Quand la France a-t-elle lancé sa stratégie ?", docs) == frozenset()


def test_source_names_are_found_among_many_documents_sharing_words():
    from qa.analysis import SourceNames

    # 2,000 sources whose names share words; a question names exactly the ones it spells out
    docs = {f"d{i}": {"publisher": f"Observatoire régional {i}"} for i in range(2000)}
    docs["twin"] = {"publisher": "Observatoire régional 7"}
    docs["alias"] = {"publisher": "Centre", "aliases": ["Observatoire des Balkans"]}
    names = SourceNames(docs)
    tokens = {lang: set(analyse("Que dit l'Observatoire régional 7 de la Serbie ?", lang)) for lang in ("fr", "en")}
    assert names.named_in(tokens) == {"d7", "twin"}
    tokens = {lang: set(analyse("Selon l'observatoire des Balkans ?", lang)) for lang in ("fr", "en")}
    assert names.named_in(tokens) == {"alias"}
    assert {"balkan", "observatoir"} & names.terms
