import textwrap

from qa.cleaning import BODY, NOTE, Edit, apply_edits, clean

OCR = (
    "Malgré le regain qui anime la poli-\n"
    "tique de I'Union et I’Europe, ont tous contribué & rendre\n"
    "cet environnement instable. Les Vingt-\n"
    "Sept doivent agir depuis 2023% et en 2024\n"
    "\n"
    "1 Dabrowski, M. (2025). Une note de bas de page. Bruegel.\n"
    "2 Tafuro, E. (2025). Une autre note. ISPI.\n"
    "2 - Institut Jacques Delors < Décryptage\n"
    "\n"
    "ainsi que des hélicoptéres de I'UE®. Fin.\n"
)


def _clean(raw=OCR, **kw):
    return clean(raw, language=kw.pop("language", "fr"), footer_markers=["Institut Jacques Delors"], **kw)


def test_apply_edits_inside_range_only():
    raw = "abcdef"
    edits = [Edit(1, 2, "X"), Edit(3, 3, "+"), Edit(4, 6, "")]
    assert apply_edits(raw, edits, 0, 6) == "aXc+d"
    assert apply_edits(raw, edits, 2, 5) == "c+de"  # the edit 4..6 is not inside 2..5


def test_hyphenation_joined_and_compounds_kept():
    body = _clean().streams[BODY].text
    assert "politique" in body
    assert "Vingt-Sept" in body


def test_safe_ocr_fixes():
    body = _clean().streams[BODY].text
    assert "de l'Union" in body and "l’Europe" in body
    assert "contribué à rendre" in body


def test_ocr_fixes_are_french_only():
    doc = clean("I'm sure I've seen it. Tom & Jerry.\n", language="en")
    assert doc.streams[BODY].text == "I'm sure I've seen it. Tom & Jerry."


def test_footer_removed_notes_kept_apart_and_sentence_rejoined_across_them():
    doc = _clean()
    body, notes = doc.streams[BODY].text, doc.streams[NOTE].text
    assert "Institut Jacques Delors" not in body + notes
    assert "Dabrowski" in notes and "Dabrowski" not in body
    assert "en 2024 ainsi que des hélicoptéres" in body
    assert notes.count("\n\n") == 1  # two notes, one per paragraph


def test_glued_note_calls_separated():
    body = _clean().streams[BODY].text
    assert "de l'UE. Fin." in body


def test_pages_follow_footers():
    doc = _clean()
    body = doc.streams[BODY].text
    assert doc.page_at(BODY, body.index("Malgré")) == 2
    assert doc.page_at(BODY, body.index("hélicoptéres")) == 3


def test_wrapped_lines_rejoined_but_list_items_kept():
    raw = "Un paragraphe coupé\nen deux lignes.\n- premier point\n- second point\n"
    text = clean(raw, language="fr").streams[BODY].text
    assert text == "Un paragraphe coupé en deux lignes.\n- premier point\n- second point"


def test_one_paragraph_per_line_keeps_its_headings_apart():
    # A web sheet saved as text: paragraphs and headings one per line, of every length, all
    # under 150 characters. Not wrapped text: a heading is not the start of the next sentence.
    raw = (
        "Vignette Crit'Air pour les véhicules professionnels\n"
        "La vignette Crit'Air classe les véhicules selon leurs émissions de polluants.\n"
        "Elle est obligatoire dans les zones à faibles émissions.\n"
        "Qui est concerné ?\n"
        "Tous les véhicules d'entreprise qui circulent dans une zone à faibles émissions mobilité.\n"
        "Comment l'obtenir ?\n"
        "La procédure varie si vous avez une flotte de véhicules ou pas.\n"
        "Flotte de véhicules\n"
        "Vous pouvez commander des vignettes sur l'espace professionnel du site officiel.\n"
        "Un seul véhicule\n"
        "Vous faites la demande en ligne avec le certificat d'immatriculation.\n"
        "Combien coûte la vignette ?\n"
        "Le prix de la vignette est de 3,77 euros, frais d'envoi compris.\n"
    )
    doc = clean(raw, language="fr")
    text = doc.streams[BODY].text
    assert "ou pas.\nFlotte de véhicules\nVous pouvez" in text
    assert "\nUn seul véhicule\nVous faites" in text
    assert doc.rebuild(doc.spans(BODY, 0, len(text))) == text


def test_wrapped_text_rejoins_a_line_that_breaks_before_a_capital():
    # Hard-wrapped at one width: a line break inside a sentence, even before "Parlement".
    paragraph = (
        "Les députés estiment que les partenariats en matière de sécurité et de défense sont "
        "essentiels pour que l'Europe puisse répondre aux menaces émergentes, et le "
        "Parlement européen insiste sur la coopération industrielle, sur l'innovation, sur "
        "l'interopérabilité des forces et sur la formation commune des armées des États "
        "membres, ainsi que sur l'attachement de l'Union à l'ordre international fondé sur "
        "des règles, aux droits de l'homme et au multilatéralisme, qui restent la base de "
        "son action extérieure et de sa politique de sécurité et de défense commune."
    )
    lines = textwrap.wrap(paragraph, 42)
    assert "Parlement" in [ln.split()[0] for ln in lines] and len(lines) >= 10
    text = clean("\n".join(lines) + "\n", language="fr").streams[BODY].text
    assert text == paragraph


def test_every_clean_character_maps_back_for_the_spans():
    doc = _clean()
    text = doc.streams[BODY].text
    spans = doc.spans(BODY, 0, len(text))
    assert len(spans) == 2  # interrupted by the notes and the footer
    assert doc.rebuild(spans) == text


def test_unicode_normalisation():
    raw = "La de\u0301fense et l\u2019e\ufb01cacite\u0301.\n"
    text = clean(raw, language="fr").streams[BODY].text
    assert text == "La défense et l’eficacité."


def test_html_tags_and_entities():
    raw = "<html><head><title>T</title></head><body><h1>Titre</h1><p>Un&nbsp;texte &amp; <b>gras</b>.</p><script>x()</script></body></html>"
    doc = clean(raw, language="fr", fmt="html")
    text = doc.streams[BODY].text
    assert text == "Titre\n\nUn\xa0texte & gras."
    assert doc.rebuild(doc.spans(BODY, 0, len(text))) == text


def test_markdown_marks_removed():
    raw = "# Titre\n\nUn **mot** et un [lien](http://x.org).\n"
    assert clean(raw, language="fr", fmt="md").streams[BODY].text == "Titre\n\nUn mot et un lien."
