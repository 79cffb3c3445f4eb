"""What a question asks for (no index, no encoder)."""

import pytest

from qa.questions import HOLDS, answer_type


@pytest.mark.parametrize(
    "question, kind",
    [
        ("Quand la Serbie a-t-elle rejoint le Partenariat pour la paix ?", "date"),
        ("La Serbie a rejoint le Partenariat pour la paix quand ?", "date"),
        ("Leasing : quand rendre le véhicule ?", "date"),
        ("Where and when did Zelenskyy speak?", "date"),
        ("Where is the training centre, and when was it recognised?", "date"),
        ("After the reform, when was the envoy appointed?", "date"),
        ("Depuis la réforme, quand a-t-il été nommé ?", "date"),
        ("On what date did the Parliament adopt the resolution?", "date"),
        ("Véhicule en leasing : que faire quand le contrat se termine ?", None),  # a conjunction
        ("What happens to my pension when I move abroad?", None),
        ("Combien de trimestres faut-il avoir cotisé ?", "quantity"),
        ("How many Rafale jets has Serbia acquired?", "quantity"),
        ("Quel est le montant du plan de croissance ?", "quantity"),
        ("Pourquoi la Serbie reste-t-elle neutre ?", None),
        # An opening "quand …," clause is a condition: the question after the comma decides.
        ("Quand un stagiaire est embauché, jusqu'à quelle limite la période d'essai est-elle réduite ?", None),
        ("Quand l'acheteur renonce à la vente, quel est en général le montant de l'indemnité ?", "quantity"),
        ("When a tenant leaves, how long does the landlord have to return the deposit?", None),
        ("Quand une transaction peut-elle être signée ?", "date"),
        ("When was it signed, and who signed it?", "date"),
    ],
)
def test_what_a_question_asks_for(question, kind):
    assert answer_type(question) == kind


def test_a_passage_holds_a_date_or_a_quantity():
    assert HOLDS["date"].search("établi en décembre 2006") and HOLDS["date"].search("It depends on your age")
    assert not HOLDS["date"].search("Both parties signed it.")
    assert HOLDS["quantity"].search("La Serbie acquiert 12 chasseurs") and HOLDS["quantity"].search("un seul pays")
    assert not HOLDS["quantity"].search("Un pays voisin l'a signé.")  # "un" alone is an article
    assert not HOLDS["quantity"].search("Des pays variés")
    assert HOLDS["quantity"].search("dont les exportations ont doublé") and HOLDS["quantity"].search("sales have tripled")


def test_a_date_may_be_given_relative_to_an_event():
    """Procedures answer "quand" with a moment placed by an event or a delay."""
    for text in (
        "La transaction ne peut être conclue qu'après la date de cessation du contrat.",
        "Le CDD peut prendre fin jusqu'au surlendemain du jour de reprise du salarié remplacé.",
        "Vous devez le déclarer dans les 15 jours.",
        "It must be filed no later than the end of the stay.",
    ):
        assert HOLDS["date"].search(text), text
    assert not HOLDS["date"].search("Elle est rédigée par écrit et signée après discussion.")  # "après" alone places nothing


def test_an_amount_is_a_number_that_is_no_year():
    from qa.questions import states_amount

    assert states_amount("1,5 milliard d'euros ont été engagés") and states_amount("dans les six pays")
    assert not states_amount("Since 2019, AFD has become an important actor.")
    assert states_amount("En 2024, 57% des importations")
