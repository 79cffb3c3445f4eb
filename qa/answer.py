"""Answers: retrieval -> cited passages with evidence sentences, or an abstention."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .analysis import LANGUAGES, SourceNames, analyse, cognates, question_language
from .chunking import Chunk, strip_urls
from .config import FUSIONS, MAX_K, MAX_QUESTION_CHARS, MODES, RetrievalConfig, abstain_threshold_for, load_config
from .corpus import LONE_SURROGATE
from .encoders import Encoder, load_encoder
from .errors import IndexMismatchError, InputError
from .index import Index
from .questions import HOLDS, QUESTION_WORDS, YEAR, answer_type, states_amount
from .retrieval import Backend, Feedback, Fusion, Hit, RowCache, Where, minmax, open_backend, retrieve


@dataclass(frozen=True)
class Evidence:
    """The sentence(s) of a passage that best answer; raw offsets into the document."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    rank: int
    chunk_id: str
    doc_id: str
    title: str
    language: str
    start: int
    end: int
    spans: list[list[int]]
    page: int | None
    section: str | None
    kind: str
    text: str
    score: float
    evidence: Evidence
    evidence_offset: int  # where the evidence sentence starts in ``text``

    def split_evidence(self) -> tuple[str, str, str]:
        """The passage as (before, evidence sentence, after), for display."""
        start, end = self.evidence_offset, self.evidence_offset + len(self.evidence.text)
        return self.text[:start], self.text[start:end], self.text[end:]


@dataclass(frozen=True)
class Answer:
    """The result of one question.

    ``citations`` support the answer; when ``abstained`` is true they are empty and the
    closest passages are in ``related`` instead.
    """

    question: str
    language: str
    abstained: bool
    answer: str
    citations: list[Citation]
    timings_ms: dict[str, float]
    related: list[Citation] = field(default_factory=list)
    support: float = 0.0
    reason: str = ""  # why it abstained, in a phrase ("the closest passage gives no date where it answers")

    def to_dict(self) -> dict:
        return asdict(self)

    def not_answered(self) -> str:
        """The abstention as a sentence, with its reason: what the CLI, the chat and the
        Markdown export say."""
        return "The documents do not answer this question" + (f" ({self.reason})." if self.reason else ".")


def validate_question(question: object) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InputError('the question is empty: ask something, e.g. qa ask "Quel pays a acheté des drones Bayraktar ?"')
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}: shorten it")
    return LONE_SURROGATE.sub("\ufffd", question.strip())  # not encodable text (from bytes that were not UTF-8)


def validate_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be between 1 and {MAX_K}, got {k}")
    return k


# A question's words, for the unknown-word signal. A hyphen separates words: "faut-il" is
# "faut" and "il", "sous-marine" "sous" and "marine". Read whole, a compound counted as
# known when any one of its parts was (the "il" of "faut-il" is a known term).
WORD = re.compile(r"[^\W_]+")
# A note number at the start of a footnote's first sentence ("10 La Serbie ...").
NOTE_CALL = re.compile(r"\d{1,3}\s+(?=[^\W\d_])")
# A reference's publication date: "(29 juillet 2025)", "(2024)", "(March 3, 2025)".
PUBLISHED = re.compile(r"\((?:\d{1,2}(?:er)?\s+)?(?:[^\W\d_]+\.?\s+)?(?:\d{1,2},?\s+)?(?:1[89]|20)\d\d\)")


# A sentence that opens by referring back ("Le pays a acheté..."): cited with the sentence
# before it when an overlapping passage holds both.
ANAPHOR = re.compile(
    r"\W*(le pays|ce pays|il|elle|ils|elles|ce|cet|cette|ces|cela|celui-ci|celle-ci|it|they|this|these|the country)\b", re.IGNORECASE
)


class Assistant:
    """Questions in, cited answers out.

    Example:
        >>> assistant = Assistant.open("index")
        >>> answer = assistant.ask("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?")
        >>> answer.citations[0].doc_id
        'ijd-elargissement-balkans-securite'
    """

    def __init__(
        self,
        index: Index,
        *,
        config: RetrievalConfig | None = None,
        encoder: Encoder | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.index = index
        self.config = config or load_config().retrieval
        self._encoder = encoder
        if encoder is not None and encoder.id != index.encoder_id:
            raise IndexMismatchError(
                f"the index was built with encoder {index.encoder_id}, not {encoder.id}: rebuild it with this encoder "
                "(`qa index --rebuild --model NAME_OR_PATH`) or open it without passing an encoder"
            )
        self.backend = backend or open_backend(index)
        self._terms: RowCache[list[set[str]]] = RowCache()
        self._cognates: RowCache[list[set[str]]] = RowCache()
        self._publishers = {d: m.get("publisher", "") for d, m in index.manifest["documents"].items()}
        langs, counts = np.unique(index.langs, return_counts=True)
        self._language_share = {str(lang): n / counts.sum() for lang, n in zip(langs, counts)}
        self._source_names = SourceNames(self.documents)
        # What a question's words are looked up in: the corpus's terms, and the words of
        # titles and source names ("Delors", "IJD").
        self._known = index.vocabulary | self._source_names.terms
        self._known |= {term for meta in self.documents.values() for lang in LANGUAGES for term in analyse(meta.get("title", ""), lang)}

    @classmethod
    def open(cls, path: str | Path = "index", *, config: RetrievalConfig | None = None, encoder: Encoder | None = None) -> Assistant:
        return cls(Index.load(path), config=config, encoder=encoder)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.index.manifest["encoder"]["name"])
            if self._encoder.id != self.index.encoder_id:
                raise IndexMismatchError(
                    f"encoder {self._encoder.id} does not match the index's {self.index.encoder_id}: "
                    f"run `qa index --rebuild --index {self.index.path.parent.parent}`"
                )
        return self._encoder

    @property
    def documents(self) -> dict[str, dict]:
        return self.index.manifest["documents"]

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        lang: str | None = None,
        doc: str | None = None,
        question_lang: str | None = None,
    ) -> Answer:
        """Answer one question with up to ``k`` citations. ``lang`` and ``doc`` filter the
        passages; ``question_lang`` overrides the question's detected language (which
        sets the analyser and what counts as the other language).

        Raises:
            InputError: empty or over-long question, k outside 1..50, unknown mode,
                language or document.
        """
        t0 = time.perf_counter()
        question = validate_question(question)
        cfg = self.config
        k = validate_k(cfg.k if k is None else k)
        mode = mode or cfg.mode
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if cfg.fusion not in FUSIONS:
            raise InputError(f"[retrieval] fusion must be one of {', '.join(FUSIONS)}, got {cfg.fusion!r}")
        for name, value in (("lang", lang), ("question_lang", question_lang)):
            if value is not None and value not in LANGUAGES:
                raise InputError(f"{name} must be one of {', '.join(LANGUAGES)}, got {value!r}")
        if doc is not None and doc not in self.documents:
            raise InputError(f"unknown document {doc!r}; indexed documents: {', '.join(sorted(self.documents))}")
        where = Where(lang, doc) if lang is not None or doc is not None else None

        timings: dict[str, float] = {}
        q_lang = question_lang or question_language(question)
        tokens = {lang: set(analyse(question, lang)) for lang in LANGUAGES}  # once per question
        t = time.perf_counter()
        qvec = self.encoder.encode([question], query=True)[0]
        timings["embed"] = (time.perf_counter() - t) * 1000
        hits = retrieve(
            self.backend,
            qvec if mode != "bm25" else None,
            question,
            q_lang,
            mode=mode,
            depth=max(cfg.depth, k),
            rrf_k=cfg.rrf_k,
            weights={"dense": cfg.dense_weight, "bm25": cfg.bm25_weight},
            where=where,
            timings=timings,
            feedback=Feedback(cfg.prf_docs, cfg.prf_terms) if cfg.prf_terms > 0 and mode == "hybrid" else None,
            fusion=Fusion(
                cfg.bm25_share, cfg.bm25_share_cross, cfg.cross_lingual_offset, cfg.source_offset, self._source_names.named_in(tokens)
            )
            if cfg.fusion == "convex"
            else None,
        )
        t = time.perf_counter()
        wanted = answer_type(question)  # a date, a quantity or None: read once per question
        citations, cosine, around = self._cite(q_lang, tokens, qvec, hits, k, hybrid=mode == "hybrid", wanted=wanted)
        sig, unknown, missing = self._signals(question, cosine, q_lang, around, wanted)
        support = self._answerability(sig)
        threshold = cfg.abstain_threshold if cfg.abstain_threshold is not None else abstain_threshold_for(self.index.encoder_id)
        abstained = support < threshold
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        timings = {name: round(ms, 3) for name, ms in timings.items()}
        if abstained:
            reason = self._why_not(unknown, missing)
            return Answer(question, q_lang, True, "", [], timings, related=citations, support=round(support, 4), reason=reason)
        return Answer(
            question, q_lang, False, citations[0].evidence.text if citations else "", citations, timings, support=round(support, 4)
        )

    def ask_many(self, questions: Iterable[str], **options: object) -> list[Answer]:
        return [self.ask(q, **options) for q in questions]  # type: ignore[arg-type]

    def _cite(
        self,
        q_lang: str,
        tokens: dict[str, set[str]],
        qvec: np.ndarray,
        hits: list[Hit],
        k: int,
        hybrid: bool = True,
        wanted: str | None = None,
    ) -> tuple[list[Citation], float, str]:
        """Pick each candidate's best sentence, rerank by it, and keep k distinct passages.
        Also returns the best cosine of a candidate passage to the question (0.0 without
        candidates): what answerability starts from; and the first citation's passage (or
        its evidence sentence with ``type_window`` sentences on either side), web addresses
        left out (and, unless a date is asked, a reference note's call number and publication
        date): where the answer to a date or quantity question must be. ``wanted`` is the
        question's ``answer_type``: a sentence that can answer it gets ``date_bonus`` or
        ``quantity_bonus``."""
        cfg = self.config
        pool = hits[: max(3 * k, cfg.rerank_depth)]
        if not pool:
            return [], 0.0, ""
        # Retrieval scores on a 0..1 scale: min-max over the pool (raw cosines, BM25 scores
        # possibly negative, fused scores).
        rank_scores = minmax({position: hit.score for position, hit in enumerate(pool)})
        chunks = [self.index.chunks[hit.row] for hit in pool]
        offset = cfg.cross_lingual_offset if hybrid else 0.0
        # Sentence cosines, on a 0..1 scale over every sentence of the pool.
        cosines = []
        for hit, chunk in zip(pool, chunks):
            vectors = self.index.sentence_rows(hit.row)
            c = vectors @ qvec if len(vectors) else np.zeros(0)
            cosines.append(c + (offset if chunk.lang != q_lang else 0.0))
        every = np.concatenate(cosines) if cosines else np.zeros(0)
        low, high = (float(every.min()), float(every.max())) if len(every) else (0.0, 1.0)
        scale = high - low if high > low else 1.0
        # Coverage of the question's terms by a sentence: in the question's language, the
        # terms themselves; in the other, their cognates (the question analysed in its own
        # language, "integrity" -> "integr", against the sentence's "integrit").
        q_own = tokens.get(q_lang, tokens["en"])  # analyse() reads other languages as English
        q_cognates = cognates(q_own)

        def matched(row: int, chunk: Chunk) -> tuple[set[str], list[set[str]]]:
            """The question's terms, and each sentence's, as they can meet (cognates across languages)."""
            if chunk.lang == q_lang:
                return q_own, self._sentence_terms(row, chunk)
            return q_cognates, self._sentence_cognates(row, chunk)

        scored = []
        for position, (hit, chunk) in enumerate(zip(pool, chunks)):
            best_j, best_support = 0, -1.0
            candidates = [j for j, sent in enumerate(chunk.sentences) if not sent.heading]
            if not candidates:
                continue  # headings only: nothing in it can be evidence
            q_terms, terms = matched(hit.row, chunk)
            for j in candidates:
                coverage = len(q_terms & terms[j]) / len(q_terms) if q_terms else 0.0
                support = (float(cosines[position][j]) - low) / scale + cfg.coverage_weight * coverage
                if wanted == "date" and YEAR.search(chunk.text, chunk.sentences[j].start, chunk.sentences[j].end):
                    support += cfg.date_bonus
                elif wanted == "quantity" and states_amount(strip_urls(chunk.text[chunk.sentences[j].start : chunk.sentences[j].end])):
                    support += cfg.quantity_bonus
                if support > best_support:
                    best_j, best_support = j, support
            rank_score = float(rank_scores[position])
            adjust = 0.0
            if chunk.is_reference:
                adjust -= cfg.reference_penalty
            final = best_support + cfg.fusion_weight * rank_score + adjust if cfg.rerank else -position
            scored.append((final, position, chunk, best_j, rank_score))
        scored.sort(key=lambda item: (-item[0], item[1]))
        # Overlapping passages with the same best sentence are cited once, at the best one's
        # place. Shown is the one that also holds the sentence before it (the context that
        # "Le pays..." refers to), when there is one; else the one whose sentences hold most
        # of the question's terms (the shared sentence ties them; the context around it is
        # what differs: "À quoi serviront les patrouilleurs…" meets "…l'accord avec la
        # France…" in both, "patrouilleurs" only in the passage that goes on after it).
        groups: dict[tuple[str, int], list] = {}
        for item in scored:
            chunk, j = item[2], item[3]
            groups.setdefault((chunk.doc_id, chunk.sentences[j].raw_start), []).append(item)
        citations: list[Citation] = []
        around = ""
        top = scored[0][0] if scored else 1.0
        for members in groups.values():  # in order of their best member
            final, rank_score = members[0][0], members[0][4]
            chunk, j = members[0][2], members[0][3]
            if j == 0 and ANAPHOR.match(chunk.text, chunk.sentences[0].start):
                chunk, j = next(((m[2], m[3]) for m in members if m[3] > 0), (chunk, j))
            elif len(members) > 1:
                held = [len(q & set().union(*terms)) for q, terms in (matched(pool[m[1]].row, m[2]) for m in members)]
                best = held.index(max(held))  # the first of the best: ties keep the rerank's order
                chunk, j = members[best][2], members[best][3]
            sentence = chunk.sentences[j]
            start, raw_start = sentence.start, sentence.raw_start
            if not citations:
                w = cfg.type_window if cfg.type_window >= 0 else len(chunk.sentences)  # < 0: the whole passage
                lo, hi = max(0, j - w), min(len(chunk.sentences), j + w + 1)
                around = strip_urls(chunk.text[chunk.sentences[lo].start : chunk.sentences[hi - 1].end])  # a URL's digits are no answer
                if chunk.is_reference and wanted != "date":  # a note's call number and date say how many of nothing
                    number = NOTE_CALL.match(around) if lo == 0 else None  # the note's call number
                    around = PUBLISHED.sub(" ", around[number.end() :] if number else around)
            call = NOTE_CALL.match(chunk.text, start, sentence.end)
            if call:  # a footnote's number glued to its first sentence: not part of the answer
                start, raw_start = call.end(), raw_start + (call.end() - start)
            citations.append(
                Citation(
                    rank=len(citations) + 1,
                    chunk_id=chunk.id,
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    language=chunk.lang,
                    start=chunk.start,
                    end=chunk.end,
                    spans=[list(s) for s in chunk.spans],
                    page=chunk.page,
                    section=chunk.section,
                    kind=chunk.kind,
                    text=chunk.text,
                    score=round(final / top if cfg.rerank and top > 0 else rank_score, 4),
                    evidence=Evidence(raw_start, sentence.raw_end, chunk.text[start : sentence.end]),
                    evidence_offset=start,
                )
            )
            if len(citations) == k:
                break
        known = [h.dense_score for h in pool if h.dense_score is not None]
        if len(known) == len(pool):  # retrieval scored every candidate by cosine already
            best_cosine = max(known)
        else:  # bm25 mode, or an engine that fused alone
            best_cosine = float(np.max(np.asarray(self.index.vectors[[h.row for h in pool]], dtype=np.float32) @ qvec))
        return citations, best_cosine, around

    def signals(self, question: str, cosine: float, q_lang: str, passage: str = "") -> dict[str, float]:
        """What answerability is judged on: ``cosine``, the best cosine of a candidate
        passage to the question; ``mismatch``, 1.0 when the question asks for a date or a
        quantity and ``passage`` (the first citation's passage, or the ``type_window``
        around its evidence sentence) holds none (no year, month or relative date such as
        "dans les 15 jours"; no digit nor number word): it cannot answer, however close its topic; and
        ``unknown``, the share of the question's content words
        found nowhere in the corpus nor in its documents' titles and sources (under either
        language's analysis: "FIFA", "Marignan"), times the share of the corpus written in
        the question's language: a word missing from a corpus in the question's own
        language says more than an English word missing from French documents. Stopwords
        of either language and question words ("combien", "quand") are not content."""
        return self._signals(question, cosine, q_lang, passage, answer_type(question))[0]

    def _signals(
        self, question: str, cosine: float, q_lang: str, passage: str, wanted: str | None
    ) -> tuple[dict[str, float], list[str], str | None]:
        """The signals, with what they were counted from: the unknown words, and the asked
        type (``wanted``) the passage cannot hold (None when it can, or when nothing is asked)."""
        content, unknown = self._content_words(question)
        share = self._language_share.get(q_lang, 0.0)
        missing = wanted if wanted is not None and passage and not HOLDS[wanted].search(passage) else None
        sig = {
            "cosine": cosine,
            "unknown": share * len(unknown) / len(content) if content else 0.0,
            "mismatch": 1.0 if missing else 0.0,
        }
        return sig, unknown, missing

    def _content_words(self, question: str) -> tuple[list[str], list[str]]:
        """The question's content words, and those of them found nowhere in the corpus."""
        content, unknown = [], []
        for word in WORD.findall(question):
            forms = [set(analyse(word, lang)) for lang in LANGUAGES]
            if not all(forms) or word.lower() in QUESTION_WORDS:
                continue
            content.append(word)
            if self.index.vocabulary and not set().union(*forms) & self._known:
                unknown.append(word)
        return content, unknown

    @staticmethod
    def _why_not(unknown: list[str], missing: str | None) -> str:
        """Why an abstention, in a phrase a user can check."""
        if missing:
            return f"the closest passage gives no {'date' if missing == 'date' else 'number'} where it answers"
        unknown = list(dict.fromkeys(unknown))
        why = "no passage is close enough to the question"
        if unknown:
            words = ", ".join(unknown[:4]) + (f" and {len(unknown) - 4} more" if len(unknown) > 4 else "")
            why += f"; {words} {'appears' if len(unknown) == 1 else 'appear'} nowhere in the documents"
        return why

    def _answerability(self, sig: dict[str, float]) -> float:
        """What the abstention threshold applies to: the best passage cosine less
        ``unknown_word_penalty`` times the share of unknown words (weights fitted by logistic
        regression on the answerable and off-topic questions of ``eval/seed.jsonl``), less
        ``answer_type_penalty`` when the first citation cannot hold the asked date or quantity."""
        cfg = self.config
        return sig["cosine"] - cfg.unknown_word_penalty * sig["unknown"] - cfg.answer_type_penalty * sig["mismatch"]

    def _sentence_terms(self, row: int, chunk: Chunk) -> list[set[str]]:
        """Analysed terms of a chunk's sentences (the chunk at ``row``), cached across questions."""
        return self._terms.get(row, lambda: [set(analyse(strip_urls(chunk.text[s.start : s.end]), chunk.lang)) for s in chunk.sentences])

    def _sentence_cognates(self, row: int, chunk: Chunk) -> list[set[str]]:
        """The cognates of those terms (what a question in the other language meets), cached too."""
        return self._cognates.get(row, lambda: [cognates(terms) for terms in self._sentence_terms(row, chunk)])

    def publisher(self, doc_id: str) -> str:
        return self._publishers.get(doc_id, "")
