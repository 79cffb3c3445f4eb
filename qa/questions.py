"""What a question asks for, read from its words alone: a date ("quand", "en quelle année",
"on what date"), a quantity ("combien", "how many", "quel est le montant"), or anything
else; and what a passage must hold to answer a date or a quantity. Used by the evidence
step (a "when" question prefers a sentence with a year) and by abstention (a passage
that holds no date cannot answer "when")."""

from __future__ import annotations

import re

# A question that asks for a date, and a sentence that holds a year. "When" and "quand"
# alone ask where a question or a clause opens ("Quand la Serbie…", "Leasing : quand…",
# "Where and when…", "…, and when was it…"), where it closes ("… quand ?"), or before an
# inverted verb ("when was", "quand est-ce", "quand a-t-il"); elsewhere they are
# conjunctions ("que faire quand le contrat se termine ?", "what happens when I move?").
WHEN = re.compile(
    r"\b(what year|which year|what date|which date|since when|until when|how long ago|depuis quand|jusqu'à quand|jusqu’à quand"
    r"|en quelle année|quelle année|à quelle date|quelle date|en quel mois)\b"
    r"|(?:^|[:;]|\b(?:where|où) (?:and|et) |, (?:and|et) )[\W_]{0,4}(?:when|quand)\b|\b(?:when|quand)[\s?]*$"
    r"|\bwhen (?:was|were|did|does|do|is|are|has|have|had|will|would|can|could|should)\b"
    r"|\bquand (?:est-ce|\w+-t-(?:il|elle|on)|\w+-(?:il|elle|ils|elles|on))\b",
    re.IGNORECASE,
)
_YEAR = r"1[89]\d\d|20\d\d"
YEAR = re.compile(rf"\b({_YEAR})\b")
# A question that asks for a quantity ("combien", "how many", "quel est le montant").
COUNT = re.compile(
    r"\b(how many|how much|what share|what percentage|what proportion"
    r"|what is the (?:total )?(?:amount|budget|cost|number|value)|combien"
    r"|quel(?:le)?s? (?:est |sont |était )?(?:en général |au maximum |au minimum |environ )?(?:le |la |l'|l’)?"
    r"(?:montant|nombre|somme|part|pourcentage|proportion|budget|coût|valeur))",
    re.IGNORECASE,
)
MONTHS = (
    "janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre décembre decembre "
    "january february march april may june july august september october november december"
).split()
# What a passage must hold to answer: a date (a year or a month), a quantity (digits or a
# number word, a multiple such as "doublé"; "un", "une", "one" only as "un seul", "only one": alone they are articles),
# or that it depends ("varie selon votre année de naissance"), which answers either.
DEPENDS = r"|dépend\w*|depend\w*|vari(?:e|ent|es|able|ables|ies|y)"
# A date may also be given relative to an event, as procedures state them ("qu'après la
# date de cessation du contrat", "jusqu'au surlendemain du jour de reprise", "dans un délai
# de 2 mois", "no later than"): markers that place a moment, not words ("après") that any text holds.
RELATIVE = (
    r"|date|dates|délai|délais|lendemain|surlendemain|veille|à compter|à partir d\w*|au plus tard|jusqu'au|jusqu’au"
    r"|\d+\s*(?:jours?|semaines?|mois|ans|années?|heures?|days?|weeks?|months?|years?|hours?)"
    r"|deadline|no later than|as soon as|within \w+ (?:days?|weeks?|months?|years?)"
)
HOLDS = {
    "date": re.compile(rf"\b({_YEAR}|" + "|".join(MONTHS) + DEPENDS + RELATIVE + r")\b", re.IGNORECASE),
    "quantity": re.compile(
        r"\d|\b(un seul|une seule|only one|a single|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|trente"
        r"|quarante|cinquante|soixante|cent|mille|millions?|milliards?|dizaines?|centaines?|moitié|tiers|quart|two|three|four|five"
        r"|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundreds?|thousands?|billions?|dozens?|half"
        r"|third|quarter|doubl\w*|tripl\w*|quadrupl\w*" + DEPENDS + r")\b",
        re.IGNORECASE,
    ),
}


def states_amount(text: str) -> bool:
    """Whether ``text`` gives an amount: a number or a number word that is not a year
    ("1,5 milliard d'euros", "trois mois"; not "since 2019"). What the evidence step
    prefers for a "how many / combien" question."""
    return HOLDS["quantity"].search(YEAR.sub(" ", text)) is not None


# Interrogatives that documents seldom contain: not evidence that a question is off-topic.
QUESTION_WORDS = frozenset(
    "combien quand comment pourquoi où ou quel quelle quels quelles lequel laquelle lesquels lesquelles qui que quoi "
    "what when how why which who whom whose where".split()
)


def asks_when(question: str) -> bool:
    return WHEN.search(question) is not None


# "Quand …, <question> ?": an opening "quand" / "when" clause that a comma closes before the
# question proper is a condition ("Quand un stagiaire est embauché, jusqu'à quelle limite… ?").
# What opens the question proper: a question word (not "ou", "or"), or an inverted verb.
_OPENERS = sorted(QUESTION_WORDS - {"quand", "when", "ou"}) + [
    "qu['’]", "jusqu", "est-ce", "peut", "peuvent", "doit", "doivent", "faut",
    "can", "could", "do", "does", "did", "is", "are", "should", "must", "will",
]  # fmt: skip
CONDITION = re.compile(rf"^[\W_]{{0,4}}(?:when|quand)\b[^,?]*,\s*(?=(?:{'|'.join(_OPENERS)})\b)", re.IGNORECASE)


def answer_type(question: str) -> str | None:
    """What the question asks for: "date" (when, en quelle année), "quantity" (how many,
    combien, quel montant), or None (anything else: nothing is checked). An opening
    "quand …," clause is a condition: the question after it decides."""
    condition = CONDITION.match(question)
    if condition:
        question = question[condition.end() :]
    return "date" if asks_when(question) else "quantity" if COUNT.search(question) else None
