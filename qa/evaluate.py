"""Evaluation of expected citations.

An eval set is JSONL, one question a line::

    {"id": "q17", "question": "…", "expected": [{"doc_id": "otan-relations-serbie",
     "quote": "établi en décembre 2006"}], "tags": ["en→fr"]}

``expected`` lists alternatives (any one satisfies the question); an entry without a
quote matches at document level; ``[]`` means the corpus cannot answer and the system
should abstain. Quotes are matched after :func:`normalise`, so they survive re-chunking
and re-cleaning.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .analysis import fold_accents
from .errors import InputError

_OCR_L = re.compile(r"(?<![^\W\d_])I(?=['’][^\W\d_])")


def normalise(text: str) -> str:
    """Case, accents, apostrophes, white space, punctuation and line-break hyphenation
    removed: only letters and digits remain (``I'`` read by OCR counts as ``l'``).

    >>> normalise("poli-\\ntique de I'Union") == normalise("politique de l’union")
    True
    """
    return re.sub(r"[^0-9a-z]+", "", fold_accents(_OCR_L.sub("l", text)).lower())


@dataclass(frozen=True)
class Expected:
    doc_id: str
    quote: str | None = None

    def matches(self, doc_id: str, text: str) -> bool:
        return doc_id == self.doc_id and (self.quote is None or normalise(self.quote) in normalise(text))


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    expected: tuple[Expected, ...]
    tags: tuple[str, ...] = ()
    line: int = 0

    @property
    def answerable(self) -> bool:
        return bool(self.expected)


def load_eval_set(path: str | Path, documents: dict[str, str] | None = None) -> list[EvalQuestion]:
    """Read and validate an eval set.

    Args:
        path: the JSONL file.
        documents: doc_id -> text(s) to check doc ids and quotes against (the raw and the
            cleaned text joined); None skips that check.

    Raises:
        InputError: naming the file and line of the first problem.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"eval set not found: {path}")
    normalised_docs = {d: normalise(t) for d, t in (documents or {}).items()}
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
                raise InputError(f'{where}: each line needs a non-empty "question"')
            qid = str(item.get("id", lineno))
            if qid in seen:
                raise InputError(f"{where}: duplicate id {qid!r}")
            seen.add(qid)
            raw_expected = item.get("expected")
            if not isinstance(raw_expected, list):
                raise InputError(f'{where}: "expected" must be a list ([] for a question the corpus cannot answer)')
            expected = []
            for alt in raw_expected:
                if not isinstance(alt, dict) or not isinstance(alt.get("doc_id"), str):
                    raise InputError(f'{where}: each expected entry needs a "doc_id"')
                quote = alt.get("quote")
                if quote is not None and (not isinstance(quote, str) or not normalise(quote)):
                    raise InputError(f"{where}: quote must be a non-empty string")
                if documents is not None:
                    if alt["doc_id"] not in normalised_docs:
                        raise InputError(f"{where}: unknown doc_id {alt['doc_id']!r} (known: {', '.join(sorted(normalised_docs))})")
                    if quote is not None and normalise(quote) not in normalised_docs[alt["doc_id"]]:
                        raise InputError(f"{where}: quote {quote!r} is not in document {alt['doc_id']!r}")
                expected.append(Expected(alt["doc_id"], quote))
            tags = item.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise InputError(f'{where}: "tags" must be a list of strings')
            questions.append(EvalQuestion(qid, item["question"], tuple(expected), tuple(tags), lineno))
    if not questions:
        raise InputError(f"{path}: no questions")
    return questions


def corpus_texts(corpus_dir: str | Path) -> dict[str, str]:
    """doc_id -> raw text plus cleaned text, for validating quotes."""
    from .chunking import clean_document
    from .corpus import load_corpus

    texts = {}
    for doc in load_corpus(corpus_dir, warn=lambda m: None):
        cleaned = clean_document(doc)
        texts[doc.doc_id] = "\n".join([doc.raw, *(s.text for s in cleaned.streams.values())])
    return texts


# ---------------------------------------------------------------------------------------
# Running a set


@dataclass
class QuestionResult:
    question: EvalQuestion
    ranked: list  # list[Citation]: the citations, or the related passages when abstaining
    abstained: bool
    support: float
    latency_ms: float
    language: str
    passage_rank: int | None = None  # first ranked passage matching an expected alternative
    doc_rank: int | None = None
    evidence_hit: bool = False


def _first_match(question: EvalQuestion, ranked: Sequence, evidence: bool = False) -> int | None:
    for citation in ranked:
        text = citation.evidence.text if evidence else citation.text
        if any(alt.matches(citation.doc_id, text) for alt in question.expected):
            return citation.rank
    return None


def run_eval(
    assistant,  # qa.Assistant
    questions: Iterable[EvalQuestion],
    *,
    k: int = 10,
) -> list[QuestionResult]:
    results = []
    for q in questions:
        t = time.perf_counter()
        answer = assistant.ask(q.question, k=k)
        latency = (time.perf_counter() - t) * 1000
        ranked = answer.citations or answer.related
        r = QuestionResult(q, ranked, answer.abstained, answer.support, latency, answer.language)
        if q.answerable:
            r.passage_rank = _first_match(q, ranked)
            docs = {alt.doc_id for alt in q.expected}
            r.doc_rank = next((c.rank for c in ranked if c.doc_id in docs), None)
            r.evidence_hit = bool(ranked) and _first_match(q, ranked[:1], evidence=True) == 1
        results.append(r)
    return results


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (nan for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def relevant_chunks(question: EvalQuestion, chunks: Sequence) -> set[str]:
    """The chunk ids of the index that satisfy the question (the qrels)."""
    return {c.id for c in chunks if any(alt.matches(c.doc_id, c.text) for alt in question.expected)}


def metrics(results: Sequence[QuestionResult], k: int, chunks: Sequence | None = None) -> dict[str, float]:
    """Passage- and document-level metrics over answerable questions, abstention figures,
    latency. nDCG needs ``chunks`` (the index) to count every relevant passage."""
    answerable = [r for r in results if r.question.answerable]
    unanswerable = [r for r in results if not r.question.answerable]

    def hit(rank: int | None, n: int) -> float:
        return 1.0 if rank is not None and rank <= n else 0.0

    out: dict[str, float] = {"questions": len(results), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    if answerable:
        out["hit@1"] = _mean([hit(r.passage_rank, 1) for r in answerable])
        out["hit@5"] = _mean([hit(r.passage_rank, 5) for r in answerable])
        out[f"hit@{k}"] = _mean([hit(r.passage_rank, k) for r in answerable])
        out[f"mrr@{k}"] = _mean([1 / r.passage_rank if r.passage_rank and r.passage_rank <= k else 0.0 for r in answerable])
        if chunks is not None:
            out[f"ndcg@{k}"] = _mean([_ndcg(r, k, chunks) for r in answerable])
        out["doc@1"] = _mean([hit(r.doc_rank, 1) for r in answerable])
        out["doc@5"] = _mean([hit(r.doc_rank, 5) for r in answerable])
        out[f"doc@{k}"] = _mean([hit(r.doc_rank, k) for r in answerable])
        out["evidence@1"] = _mean([1.0 if r.evidence_hit else 0.0 for r in answerable])
        out["false_abstention"] = _mean([1.0 if r.abstained else 0.0 for r in answerable])
        lengths = [len(c.text) for r in answerable for c in r.ranked[:k]]
        out["median_passage_chars"] = statistics.median(lengths) if lengths else float("nan")
    if unanswerable:
        out["abstention_recall"] = _mean([1.0 if r.abstained else 0.0 for r in unanswerable])
    latencies = [r.latency_ms for r in results]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    return out


def _ndcg(result: QuestionResult, k: int, chunks: Sequence) -> float:
    relevant = relevant_chunks(result.question, chunks)
    if not relevant:
        return 0.0
    dcg = sum(1 / math.log2(i + 1) for i, c in enumerate(result.ranked[:k], start=1) if c.chunk_id in relevant)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def language_pair(result: QuestionResult, doc_languages: dict[str, str]) -> str:
    q = result.question
    evidence = doc_languages.get(q.expected[0].doc_id, "?") if q.expected else "none"
    return f"{result.language}→{evidence}"


def slices(results: Sequence[QuestionResult], k: int, doc_languages: dict[str, str]) -> dict[str, dict[str, float]]:
    """Metrics per question language × evidence language, and per tag."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(f"lang {language_pair(r, doc_languages)}", []).append(r)
        for tag in r.question.tags:
            if "→" not in tag:
                groups.setdefault(f"tag {tag}", []).append(r)
    return {name: metrics(rs, k) for name, rs in sorted(groups.items())}


def misses(results: Sequence[QuestionResult], n: int = 1) -> list[dict[str, object]]:
    """Answerable questions whose first match is below rank ``n`` (or absent), and
    unanswerable ones that were answered."""
    rows = []
    for r in results:
        first = r.ranked[0] if r.ranked else None
        got = f"{first.doc_id}: {first.evidence.text[:90]}" if first else "(nothing)"
        if r.question.answerable and (r.passage_rank is None or r.passage_rank > n):
            alt = r.question.expected[0]
            rows.append({"id": r.question.id, "rank": r.passage_rank, "expected": f"{alt.doc_id}: {alt.quote or '(document)'}", "got": got})
        elif not r.question.answerable and not r.abstained:
            rows.append({"id": r.question.id, "rank": None, "expected": "(abstain)", "got": got})
    return rows


def write_trec(results: Sequence[QuestionResult], chunks: Sequence, path: str | Path, run_name: str = "qa") -> tuple[Path, Path]:
    """A TREC run (``qid Q0 docno rank score run``) and its qrels (``qid 0 docno 1``),
    for the answerable questions, so that ranx or trec_eval can recompute the figures."""
    run_path, qrels_path = Path(path), Path(str(path) + ".qrels")
    with open(run_path, "w", encoding="utf-8") as run, open(qrels_path, "w", encoding="utf-8") as qrels:
        for r in results:
            if not r.question.answerable:
                continue
            for c in r.ranked:
                # 1/rank keeps the exact order for tools that sort by score.
                run.write(f"{r.question.id} Q0 {c.chunk_id} {c.rank} {1 / c.rank:.6f} {run_name}\n")
            for chunk_id in sorted(relevant_chunks(r.question, chunks)):
                qrels.write(f"{r.question.id} 0 {chunk_id} 1\n")
    return run_path, qrels_path


# ---------------------------------------------------------------------------------------
# Abstention threshold


@dataclass(frozen=True)
class Calibration:
    threshold: float
    abstention_recall: float
    false_abstention: float


def calibrate(results: Sequence[QuestionResult], max_false_abstention: float = 0.03) -> Calibration:
    """The threshold on the support score that abstains on the most unanswerable
    questions while abstaining on at most ``max_false_abstention`` of answerable ones;
    placed midway between neighbouring scores for a margin, then rounded down to 4
    decimals (rounding to nearest could pass an answerable question's score, which sits
    that close), with the figures counted at the rounded threshold."""
    pos = sorted(r.support for r in results if r.question.answerable)
    neg = sorted(r.support for r in results if not r.question.answerable)
    if not pos or not neg:
        raise InputError('calibration needs both answerable and unanswerable questions ("expected": []) in the set')
    scores = sorted(set(pos) | set(neg))
    cuts = [scores[0] - 1e-3] + [(a + b) / 2 for a, b in zip(scores, scores[1:])] + [scores[-1] + 1e-3]
    best: Calibration | None = None
    for t in (math.floor(cut * 1e4 + 1e-9) / 1e4 for cut in cuts):
        fa = sum(s < t for s in pos) / len(pos)
        ar = sum(s < t for s in neg) / len(neg)
        if fa <= max_false_abstention and (
            best is None or ar > best.abstention_recall or (ar == best.abstention_recall and fa < best.false_abstention)
        ):
            best = Calibration(t, ar, fa)
    assert best is not None  # the lowest cut abstains on nothing
    return best


def write_threshold(path: str | Path, threshold: float) -> None:
    """Set ``[retrieval] abstain_threshold`` in a TOML config file, keeping the rest."""
    import tomllib

    path = Path(path)
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.setdefault("retrieval", {})["abstain_threshold"] = threshold
    lines = []
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value) if not isinstance(value, bool) else str(value).lower()}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
