"""Settings. Chunking and encoder settings are saved in the index manifest (a change
rebuilds); retrieval settings apply at query time and may be overridden per call."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import InputError

DEFAULT_MODEL = "multilingual-e5-small"
MODES = ("hybrid", "bm25", "dense")
FUSIONS = ("convex", "rrf")
MAX_QUESTION_CHARS = 2000
MAX_K = 50


# Abstention thresholds calibrated on eval/seed.jsonl (qa eval --calibrate, at most 3 % of
# answerable questions abstaining), by encoder id prefix: cosines differ by model. Other
# models get the USE value, uncalibrated: run `qa eval eval/seed.jsonl --calibrate`.
ABSTAIN_THRESHOLDS = {"multilingual-e5-small": 0.7877, "use-multilingual": 0.2582}


def abstain_threshold_for(encoder_id: str) -> float:
    return next((t for prefix, t in ABSTAIN_THRESHOLDS.items() if encoder_id.startswith(prefix)), ABSTAIN_THRESHOLDS["use-multilingual"])


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut into passages (sentences are never cut)."""

    target_chars: int = 600
    overlap_sentences: int = 1
    # What is indexed (embedded and BM25-analysed) besides the passage text: "none",
    # "section" (its heading) or "title+section" (the document's title too: a passage read
    # alone loses what its document is about). Citations still show the passage only.
    context: str = "title+section"


@dataclass(frozen=True)
class RetrievalConfig:
    """Query-time settings.

    ``abstain_threshold`` applies to the support score of the best evidence sentence
    (cosine similarity plus lexical coverage, see ``answer.py``).
    """

    mode: str = "hybrid"
    k: int = 5
    depth: int = 50
    # Hybrid fusion: "convex" (normalised scores, language-aware shares, below) or "rrf".
    fusion: str = "convex"
    bm25_share: float = 0.2  # BM25's weight for passages in the question's language
    bm25_share_cross: float = 0.1  # ... and for passages in the other language
    cross_lingual_offset: float = 0.03  # added to the cosine of passages in the other language
    source_offset: float = 0.03  # ... and of passages whose source the question names ("selon l'OTAN")
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    # Abstain when answerability < abstain_threshold; answerability = best cosine of a
    # candidate passage - unknown_word_penalty * share of the question's words found
    # nowhere in the corpus, times the corpus's share in the question's language (see
    # Assistant.signals; chosen on the answerable and off-topic questions of eval/seed.jsonl).
    # None: the encoder's own (ABSTAIN_THRESHOLDS); `qa eval FILE --calibrate` writes one.
    abstain_threshold: float | None = None
    unknown_word_penalty: float = 0.15
    # Subtracted when the question asks for a date or a quantity and the first citation's
    # passage (or, with type_window >= 0, its evidence sentence and type_window sentences on
    # either side of it) holds neither a date nor a number (1.0: such an answer always
    # abstains; 0: off). The whole passage by default: the evidence sentence is often a
    # neighbour of the answer in service-public.fr's sheets (eval/README.md).
    answer_type_penalty: float = 1.0
    type_window: int = -1
    # Evidence: each candidate's best sentence maximises support = normalised cosine
    # (question, sentence) + coverage_weight * share of the question's terms in it, by
    # cognates in a passage of the other language (+ date_bonus when a "when" question
    # meets a sentence with a year, + quantity_bonus when a "how many" question meets one
    # with a number that is no year). With rerank, candidates are ordered by
    # fusion_weight * normalised retrieval score + that support.
    coverage_weight: float = 0.2
    date_bonus: float = 0.2
    quantity_bonus: float = 0.3
    rerank: bool = True
    fusion_weight: float = 2.0
    rerank_depth: int = 20
    # Subtracted from the ranking score of notes that are references (they hold a web
    # address): sources a passage cites seldom answer a question themselves.
    reference_penalty: float = 0.2
    # Pseudo-relevance feedback for BM25 (0 = off): up to prf_terms terms shared by the top
    # prf_docs dense passages are added to the question's terms.
    prf_terms: int = 0
    prf_docs: int = 3


@dataclass(frozen=True)
class Config:
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overridden by a TOML file with ``[chunking]`` and ``[retrieval]`` tables.

    Without ``path``, ``qa.toml`` in the working directory is read if it exists.
    """
    candidate = Path(path) if path else Path("qa.toml")
    if not candidate.exists():
        if path:
            raise InputError(f"config file not found: {candidate} (check the --config path)")
        return Config()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{candidate}: not valid TOML ({exc}); fix or remove the file") from exc
    config = Config()
    for section, cls in (("chunking", ChunkingConfig), ("retrieval", RetrievalConfig)):
        values = data.get(section, {})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InputError(f"{candidate}: unknown [{section}] keys {sorted(unknown)}; known: {sorted(known)}")
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config
