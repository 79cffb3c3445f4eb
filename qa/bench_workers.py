"""The benchmark's workers: each measures one thing in a fresh process (``qa.bench``
runs them as ``python -m qa.bench --worker NAME ARGS``), so that its peak RSS is its own.

Sizes past the bundled corpus are synthetic: chunks of 3 to 5 real sentences (from the
bundled documents and the service-public.fr sheets) recombined at random. Embedding a
million chunks with the bundled encoder would take hours here, so their vectors are
synthesised too: each real sentence is embedded once with the real encoder, a chunk's
vector is the mean of its sentences' vectors plus Gaussian noise (sigma 0.01 a
coordinate), renormalised; a sentence's vector is its real vector plus the same noise.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"seed": 0, "2k": 2_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
QUESTIONS_FILE = ROOT / "eval" / "seed.jsonl"
NOISE = 0.01


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------
# Workers (run in subprocesses)


def _base_sentences() -> tuple[list[str], list[str]]:
    from .chunking import chunk_document
    from .corpus import load_corpus

    seen, texts, langs = set(), [], []
    for corpus in (ROOT / "corpus", ROOT / "eval" / "spf" / "corpus"):
        if not corpus.exists():
            continue
        for doc in load_corpus(corpus, warn=lambda m: None):
            for chunk in chunk_document(doc):
                for s in chunk.sentences:
                    text = chunk.text[s.start : s.end]
                    if len(text) >= 30 and text not in seen and not s.heading:
                        seen.add(text)
                        texts.append(text)
                        langs.append(chunk.lang)
    return texts, langs


def worker_build_synthetic(n: int, out: str, ann_threshold: int, backend: str = "faiss") -> dict:
    """Synthesise n chunks with vectors and write an index version with the real writer,
    for ``backend`` (faiss or qdrant-edge)."""
    from . import index as qindex
    from .chunking import Chunk, Sentence
    from .config import DEFAULT_MODEL
    from .encoders import load_encoder
    from .engines import local

    t0 = time.perf_counter()
    texts, langs = _base_sentences()
    from .embeddings import EmbeddingCache, embed

    encoder = load_encoder(DEFAULT_MODEL)
    cache = EmbeddingCache(os.environ.get("QA_EMBEDDING_CACHE") or Path(out).parent / "embeddings", encoder.id, encoder.dim)
    base = embed(encoder, texts, cache=cache)  # e5 embeds ~30 sentences/s here: once per machine, then read
    cache.save()
    t_embed = time.perf_counter() - t0
    rng = np.random.default_rng(42)
    dim = base.shape[1]
    chunks, vectors = [], np.zeros((n, dim), dtype=np.float32)
    counts = rng.integers(3, 6, size=n)
    picks = [rng.choice(len(texts), size=c, replace=False) for c in counts]
    n_sent = int(counts.sum())
    sent_vectors = np.zeros((n_sent, dim), dtype=np.float16)
    row = 0
    for i, pick in enumerate(picks):
        parts, sentences, pos = [], [], 0
        for j in pick:
            if parts:
                pos += 1
            sentences.append(Sentence(pos, pos + len(texts[j]), pos, pos + len(texts[j])))
            parts.append(texts[j])
            pos += len(texts[j])
        text = " ".join(parts)
        doc_id = f"synth-{i // 20:06d}"
        lang = max(set(langs[j] for j in pick), key=[langs[j] for j in pick].count)
        cid = hashlib.sha256(f"{doc_id}\x00{i}\x00{text}".encode()).hexdigest()[:16]
        chunks.append(
            Chunk(
                cid,
                doc_id,
                f"Synthetic document {i // 20}",
                lang,
                "body",
                text,
                0,
                len(text),
                ((0, len(text)),),
                None,
                None,
                tuple(sentences),
            )
        )
        noisy = base[pick] + rng.normal(0, NOISE, size=(len(pick), dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        sent_vectors[row : row + len(pick)] = noisy.astype(np.float16)
        row += len(pick)
        v = base[pick].mean(axis=0) + rng.normal(0, NOISE, size=dim).astype(np.float32)
        vectors[i] = v / np.linalg.norm(v)
    t_synth = time.perf_counter() - t0
    local.ANN_THRESHOLD = ann_threshold
    manifest = {
        "format_version": qindex.FORMAT_VERSION,
        "package_version": "bench",
        "created": datetime.now(UTC).isoformat(),
        "encoder": {"name": DEFAULT_MODEL, "id": encoder.id, "dim": dim},
        "settings": {"synthetic": True},
        "corpus": "synthetic",
        "documents": {
            d: {"sha256": "", "path": "", "title": d, "language": "fr", "publisher": "", "date": "", "chunks": 0}
            for d in dict.fromkeys(c.doc_id for c in chunks)
        },
        "counts": {"documents": 0, "chunks": n, "sentences": n_sent},
    }
    t1 = time.perf_counter()
    path = qindex.write_version(Path(out), manifest, chunks, vectors, sent_vectors, context="none", backend={"type": backend})
    t_write = time.perf_counter() - t1
    return {
        "chunks": n,
        "base_sentences": len(texts),
        "embed_base_s": t_embed,
        "synth_s": t_synth,
        "build_s": t_write,
        "chunks_per_s": n / t_write,
        "peak_rss_mb": _peak_mb(),
        "disk_mb": _dir_mb(path),
        "dense": manifest.get("dense", {"type": backend}),
    }


def worker_build_seed(out: str) -> dict:
    from .index import build_index

    t = time.perf_counter()
    report = build_index(ROOT / "corpus", out, rebuild=True, progress=False, log=lambda m: None)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    again = build_index(ROOT / "corpus", out, rebuild=True, progress=False, log=lambda m: None)  # texts unchanged
    return {
        "chunks": report.chunks,
        "build_s": seconds,
        "chunks_per_s": report.chunks / seconds,
        "embedded_texts": report.embedded_texts,
        "rebuild_s": time.perf_counter() - t,
        "rebuild_embedded_texts": again.embedded_texts,
        "rebuild_cached_texts": again.cached_texts,
        "peak_rss_mb": _peak_mb(),
        "disk_mb": _dir_mb(report.path),
    }


def worker_query(index: str, n_queries: int) -> dict:
    """Load, then warm queries per mode: p50/p95 of the total and of each stage."""
    from .answer import Assistant
    from .config import RetrievalConfig

    rss_before = _rss_mb()
    t = time.perf_counter()
    assistant = Assistant.open(index, config=RetrievalConfig())
    assistant.encoder.encode(["warm"], query=True)
    load_s = time.perf_counter() - t
    rss_loaded = _rss_mb()
    questions = _questions()
    out: dict = {"load_s": load_s, "rss_loaded_mb": rss_loaded, "rss_python_mb": rss_before}
    for mode in ("hybrid", "bm25", "dense"):
        for q in questions[:5]:
            assistant.ask(q, mode=mode)
        stages: dict[str, list[float]] = {}
        for i in range(n_queries):
            timings = assistant.ask(questions[i % len(questions)], mode=mode).timings_ms
            for stage, ms in timings.items():
                stages.setdefault(stage, []).append(ms)
        out[mode] = {stage: {"p50": statistics.median(v), "p95": float(np.percentile(v, 95))} for stage, v in stages.items()}
    out["rss_after_queries_mb"] = _rss_mb()
    out["peak_rss_mb"] = _peak_mb()
    return out


def _exact_scores(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inner products of ``q`` with every stored vector, read 200k rows at a time."""
    return np.concatenate([np.asarray(vectors[i : i + 200_000], dtype=np.float32) @ q for i in range(0, len(vectors), 200_000)])


def worker_recall(index: str, n_queries: int) -> dict:
    """Dense recall@10 of the HNSW index against exact search, per efSearch."""
    import faiss

    from .encoders import load_encoder
    from .index import Index

    idx = Index.load(index)
    queries = load_encoder().encode(_questions()[:n_queries], query=True)
    vectors = idx.vectors
    exact = []
    for q in queries:
        scores = _exact_scores(vectors, q)
        exact.append(set(idx.ids[np.argpartition(-scores, 10)[:10]].tolist()))
    out = {}
    for ef in (32, 64, 128, 256, 512):
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        t = time.perf_counter()
        ids = np.stack([idx.store.dense.search(q[None], 10, params=params)[1][0] for q in queries])
        ms = (time.perf_counter() - t) * 1000 / len(queries)
        recall = statistics.mean(len(exact[i] & set(ids[i].tolist())) / 10 for i in range(len(queries)))
        out[str(ef)] = {"recall@10": recall, "ms_per_query": ms}
    t = time.perf_counter()
    for q in queries[:20]:
        _exact_scores(vectors, q)
    out["exact_numpy_ms_per_query"] = (time.perf_counter() - t) * 1000 / 20
    return out


def worker_recall_edge(index: str, n_queries: int) -> dict:
    """Dense recall@10 of the Qdrant Edge shard (its HNSW, at our hnsw_ef) against exact search."""
    from .encoders import load_encoder
    from .engines.qdrant import HNSW_EF, QdrantBackend
    from .index import Index

    idx = Index.load(index)
    backend = QdrantBackend.open(idx)
    queries = load_encoder().encode(_questions()[:n_queries], query=True)
    vectors = idx.vectors
    recalls = []
    t_total = 0.0
    for q in queries:
        scores = _exact_scores(vectors, q)
        exact = set(np.argpartition(-scores, 10)[:10].tolist())
        t = time.perf_counter()
        found = backend.dense(q, 10, None)
        t_total += time.perf_counter() - t
        recalls.append(len(exact & {r for r, _ in found}) / 10)
    return {"hnsw_ef": HNSW_EF, "recall@10": statistics.mean(recalls), "ms_per_query": t_total * 1000 / len(queries)}


def worker_bm25_compare(index: str, n_queries: int) -> dict:
    """bm25s against rank-bm25 on the same tokens, same process."""
    from rank_bm25 import BM25Okapi

    from .analysis import analyse
    from .chunking import indexed_text
    from .index import Index

    idx = Index.load(index)
    context = idx.manifest["settings"].get("chunking", {}).get("context", "none")
    corpus = [analyse(indexed_text(c, context), c.lang) or [""] for c in idx.chunks]
    t = time.perf_counter()
    reference = BM25Okapi(corpus)
    ref_build = time.perf_counter() - t
    queries = [analyse(q, "fr") for q in _questions()[:n_queries]]
    queries = [q for q in queries if q]
    t = time.perf_counter()
    for q in queries:
        idx.store.bm25.get_scores(q)
    ours = (time.perf_counter() - t) * 1000 / len(queries)
    t = time.perf_counter()
    for q in queries:
        reference.get_scores(q)
    theirs = (time.perf_counter() - t) * 1000 / len(queries)
    return {"bm25s_ms": ours, "rank_bm25_ms": theirs, "ratio": theirs / ours, "rank_bm25_build_s": ref_build}


def worker_cold_start(index: str) -> dict:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "qa.cli", "ask", "--index", index, "Quel pays a acheté des drones Bayraktar ?"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t)
    return {"cold_start_s": statistics.median(times), "runs": times}


def worker_incremental(work: str) -> dict:
    from .index import build_index

    corpus = Path(work) / "corpus-incremental"
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(ROOT / "corpus", corpus)
    index = Path(work) / "index-incremental"
    shutil.rmtree(index, ignore_errors=True)
    build_index(corpus, index, progress=False, log=lambda m: None)
    (corpus / "added.md").write_text("# Ajout\n\n" + "Le centre cyber de Podgorica forme des spécialistes. " * 20, encoding="utf-8")
    t = time.perf_counter()
    report = build_index(corpus, index, progress=False, log=lambda m: None)
    return {"add_one_document_s": time.perf_counter() - t, "embedded_chunks": report.embedded_chunks}


WORKERS = {
    "build_synthetic": worker_build_synthetic,
    "build_seed": worker_build_seed,
    "query": worker_query,
    "recall": worker_recall,
    "recall_edge": worker_recall_edge,
    "bm25_compare": worker_bm25_compare,
    "cold_start": worker_cold_start,
    "incremental": worker_incremental,
}
