"""Language-aware text analysis: BM25 analysers, language detection, source names (sentences:
``qa.sentences``).

Everything here is a pure function of its input (langdetect is seeded), so a chunk is
analysed the same way at every build and a query the same way at every call.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

LANGUAGES = ("fr", "en")

# French elided articles and pronouns: l', d', qu', jusqu', lorsqu'...
_ELISION = re.compile(r"^(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu|presqu|quelqu)['’]", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

_FR_EXTRA_STOPWORDS = {
    "a",
    "à",
    "au",
    "aux",
    "avec",
    "ce",
    "ces",
    "cet",
    "cette",
    "dans",
    "de",
    "des",
    "du",
    "elle",
    "en",
    "et",
    "il",
    "ils",
    "la",
    "le",
    "les",
    "leur",
    "leurs",
    "lui",
    "mais",
    "ou",
    "où",
    "par",
    "pas",
    "pour",
    "qui",
    "que",
    "quel",
    "quelle",
    "quels",
    "quelles",
    "sa",
    "se",
    "ses",
    "son",
    "sur",
    "un",
    "une",
    "est",
    "sont",
    "été",
    "ont",
    "comme",
    "plus",
    "ne",
    "y",
    "dont",
    "entre",
    "aussi",
    "ainsi",
}

_EN_EXTRA_STOPWORDS = {
    "was",
    "were",
    "been",
    "being",
    "am",
    "did",
    "does",
    "do",
    "doing",
    "has",
    "had",
    "have",
    "which",
    "what",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "its",
    "it's",
}


def fold_accents(text: str) -> str:
    """Strip diacritics: ``sécurité`` -> ``securite``; ``œ`` -> ``oe``."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@cache
def _stemmer(language: str):  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer({"fr": "french", "en": "english"}[language])


@cache
def _stopwords(language: str) -> frozenset[str]:
    # Both languages get a full list: Snowball's French (157 words) and NLTK's English
    # (179, bm25s's STOPWORDS_EN_PLUS, less "won" and "don": NLTK has them as pieces of
    # "won't" and "don't", which are looked up whole here, and they are words: "Who
    # won…?"). The 33-word Lucene list English had before kept "my", "from", "can", "you"
    # as terms, and as content words of a question. On the seed and SPF sets (mostly
    # French passages) no figure moved by more than 0.01.
    from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_FRENCH

    if language == "fr":
        words = set(STOPWORDS_FRENCH) | _FR_EXTRA_STOPWORDS
    else:
        words = (set(STOPWORDS_EN_PLUS) - {"won", "don"}) | _EN_EXTRA_STOPWORDS
    return frozenset(fold_accents(w.lower()) for w in words)


def analyse(text: str, language: str) -> list[str]:
    """Tokens for BM25: lowercase, elision stripped (fr), stopwords dropped, accents folded,
    Snowball-stemmed.

    >>> analyse("l'élargissement", "fr") == analyse("élargissements", "fr")
    True
    """
    if language not in LANGUAGES:
        language = "en"
    stops = _stopwords(language)
    words = []
    folded = fold_accents(text.lower()) if not text.isascii() else text.lower()
    for match in _WORD.finditer(folded):
        word = match.group()
        if language == "fr":
            word = _ELISION.sub("", word)
        else:
            word = re.sub(r"['’]s$", "", word)
        word = word.replace("’", "'")
        if word in stops:  # "won't", "don't" whole, before their pieces
            continue
        for part in word.split("'"):
            if part and part not in stops and not (len(part) == 1 and part.isalpha()):
                words.append(part)
    return _stemmer(language).stemWords(words) if words else []


COGNATE_LETTERS = 5


def cognates(terms: Iterable[str]) -> set[str]:
    """Analysed terms cut to their first ``COGNATE_LETTERS`` letters, where the English and
    the French terms of one root meet: "integr" (integrity) and "integrit" (intégrité),
    "defenc" (defence) and "defens" (défense), "militari" and "militair". Some false
    friends meet too ("library", "librairie"); "actually" and "actuellement" do not.

    >>> en, fr = analyse("the Building Integrity programme", "en"), analyse("le programme pour l'intégrité", "fr")
    >>> sorted(cognates(en) & cognates(fr))
    ['integ', 'progr']
    """
    return {term[:COGNATE_LETTERS] for term in terms}


# ---------------------------------------------------------------------------------------
# Language

_FR_MARKERS = {
    "le",
    "la",
    "les",
    "des",
    "du",
    "de",
    "et",
    "est",
    "une",
    "un",
    "pour",
    "dans",
    "que",
    "qui",
    "quel",
    "quelle",
    "quels",
    "quelles",
    "pays",
    "avec",
    "sur",
    "au",
    "aux",
    "par",
    "combien",
    "comment",
    "pourquoi",
    "où",
    "quand",
    "été",
    "ont",
    "sont",
    "en",
    "ce",
}
_EN_MARKERS = {
    "the",
    "of",
    "and",
    "is",
    "are",
    "was",
    "were",
    "which",
    "what",
    "who",
    "how",
    "why",
    "when",
    "where",
    "did",
    "does",
    "do",
    "to",
    "in",
    "for",
    "with",
    "on",
    "by",
    "from",
    "country",
    "has",
    "have",
    "many",
    "much",
    "its",
    "their",
    "that",
    "this",
}


@dataclass(frozen=True)
class LanguageGuess:
    language: str
    confidence: float


def detect_language(text: str, prior: str | None = None, min_chars: int = 80) -> str:
    """Detect fr or en. ``prior`` (a document's declared language) wins for short texts
    and for texts langdetect is unsure about."""
    return guess_language(text, prior=prior, min_chars=min_chars).language


def question_language(text: str) -> str:
    """The language of a question, fr or en: :func:`detect_language`, with langdetect
    choosing between the two languages questions are answered in rather than among all
    it knows (a tenth of the time, and the same answer on every question of the eval
    sets; a document's text still goes through all, so a German page is not read as
    French)."""
    return guess_language(text, among=LANGUAGES).language


def guess_language(text: str, prior: str | None = None, min_chars: int = 80, among: Sequence[str] | None = None) -> LanguageGuess:
    words = [w.lower() for w in _WORD.findall(text)]
    fr = sum(w in _FR_MARKERS or _ELISION.match(w) is not None for w in words)
    en = sum(w in _EN_MARKERS for w in words)
    accents = sum(c in "éèêàùçâîôûëïœ" for c in text.lower())
    fr += min(accents, 3) * 0.5
    if len(text) < min_chars:
        # Short texts (queries, short chunks): function words decide, the prior breaks ties.
        if fr > en:
            return LanguageGuess("fr", 0.9)
        if en > fr:
            return LanguageGuess("en", 0.9)
        if prior in LANGUAGES:
            return LanguageGuess(prior, 0.5)
    best = _langdetect(text, tuple(among) if among else None)
    if best is None or best.language not in LANGUAGES or best.confidence < 0.8:
        if prior in LANGUAGES:
            return LanguageGuess(prior, 0.5)
        if best is None or best.language not in LANGUAGES:
            return LanguageGuess("fr" if fr > en else "en", 0.5)
    return best


def _langdetect(text: str, among: tuple[str, ...] | None = None) -> LanguageGuess | None:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    try:
        if among is None:
            ranked = detect_langs(text)
        else:
            detector = _detectors(among).create()
            detector.append(text)
            ranked = detector.get_probabilities()
    except LangDetectException:
        return None
    return LanguageGuess(ranked[0].lang, ranked[0].prob) if ranked else None


@cache
def _detectors(languages: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """A langdetect factory that knows only ``languages`` (its profiles read once)."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.seed = 0
    profiles = []
    for lang in languages:
        with open(os.path.join(PROFILES_DIRECTORY, lang), encoding="utf-8") as fh:
            profiles.append(fh.read())
    factory.load_json_profile(profiles)
    return factory


# ---------------------------------------------------------------------------------------
# Sources named in a question


def source_names(meta: Mapping[str, object]) -> list[str]:
    """The names a question may use for a document's source: its publisher (each variant of
    "OTAN / NATO" or "Ministère … (France Diplomatie)"), the publisher's initials when it has
    three capitalised words or more ("Institut Jacques Delors" -> "IJD"), and the
    ``aliases`` of its metadata."""
    publisher = str(meta.get("publisher") or "")
    names = [part.strip() for part in re.split(r"\s*/\s*|\s*[()]\s*", publisher) if part.strip()]
    for name in list(names):
        capitals = [w[0] for w in name.split() if w[:1].isupper()]
        if len(capitals) >= 3:
            names.append("".join(capitals))
    names += [str(a) for a in meta.get("aliases") or () if str(a).strip()]  # type: ignore[attr-defined]
    return names


class SourceNames:
    """Every document's ``source_names``, analysed once in both languages and filed under
    one word of each name, so that a question looks up only the names that share a word
    with it (``named_in`` costs O(question words), not O(documents))."""

    def __init__(self, documents: Mapping[str, Mapping[str, object]]) -> None:
        # {lang: {key word: {name's words: doc ids}}}; the key is the name's first word in
        # sorted order, which every question naming the source holds.
        self._keyed: dict[str, dict[str, dict[frozenset[str], set[str]]]] = {lang: {} for lang in LANGUAGES}
        for doc_id, meta in documents.items():
            for name in source_names(meta):
                for lang in LANGUAGES:
                    words = frozenset(analyse(name, lang))
                    if words:
                        self._keyed[lang].setdefault(min(words), {}).setdefault(words, set()).add(doc_id)

    @property
    def terms(self) -> set[str]:
        """Every word of every name, under either analysis."""
        return {term for keyed in self._keyed.values() for names in keyed.values() for words in names for term in words}

    def named_in(self, tokens: Mapping[str, set[str]]) -> frozenset[str]:
        """Documents whose source a question names: every word of one of its names is among
        the question's ``tokens`` ({lang: terms}), under the French or the English analysis
        ("according to the Delors paper", "selon l'OTAN")."""
        found: set[str] = set()
        for lang, keyed in self._keyed.items():
            for term in tokens[lang]:
                for words, doc_ids in keyed.get(term, {}).items():
                    if words <= tokens[lang]:
                        found |= doc_ids
        return frozenset(found)


def named_documents(question: str, documents: Mapping[str, Mapping[str, object]]) -> frozenset[str]:
    """``SourceNames.named_in`` for one question over documents' metadata.

    >>> sorted(named_documents("Que dit l'IJD ?", {"a": {"publisher": "Institut Jacques Delors"}, "b": {}}))
    ['a']
    """
    return SourceNames(documents).named_in({lang: set(analyse(question, lang)) for lang in LANGUAGES})
