"""Benchmarks: how cost grows with corpus size. Figures, never timed tests.

    python -m qa.bench --sizes seed,10k,100k,1m      (also: qa bench ...)
    qa bench --load                                  (load and soak: qa/bench_load.py)

Writes ``docs/benchmarks.md`` (table, machine, date) and ``docs/benchmarks.png`` (latency
and memory against corpus size). Each figure comes from a fresh subprocess, so that its
peak RSS is its own; comparisons run side by side in one process and are also given as
ratios, since these machines are noisy.

Sizes past the bundled corpus are synthetic: chunks of 3 to 5 real sentences (from the
bundled documents and the service-public.fr sheets) recombined at random. Embedding a
million chunks with the bundled encoder would take hours here, so their vectors are
synthesised too: each real sentence is embedded once with the real encoder, a chunk's
vector is the mean of its sentences' vectors plus Gaussian noise (sigma 0.01 a
coordinate), renormalised; a sentence's vector is its real vector plus the same noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
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
    qindex.ANN_THRESHOLD = ann_threshold
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
        exact.append(set(idx.rows["faiss_id"][np.argpartition(-scores, 10)[:10]].tolist()))
    out = {}
    for ef in (32, 64, 128, 256, 512):
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        t = time.perf_counter()
        ids = np.stack([idx.dense.search(q[None], 10, params=params)[1][0] for q in queries])
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
    from .index import Index
    from .qdrant import HNSW_EF, QdrantBackend

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
        idx.bm25.get_scores(q)
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


def _run(worker: str, **kwargs: object) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "qa.bench", "--worker", worker, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {worker} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# The report


def run(  # type: ignore[no-untyped-def]
    sizes: list[str],
    out: Path,
    work: Path,
    n_queries: int,
    ann_threshold: int,
    log=print,
    backends: tuple[str, ...] = (),
    backend_sizes: tuple[str, ...] = (),
) -> dict:
    """Every size with FAISS; ``backends`` (e.g. qdrant-edge) too at ``backend_sizes``."""
    work.mkdir(parents=True, exist_ok=True)
    from .config import DEFAULT_MODEL

    results: dict = {"sizes": {}, "machine": _machine(), "date": datetime.now(UTC).isoformat(timespec="seconds"), "encoder": DEFAULT_MODEL}
    for size in sizes:
        if size not in SIZES:
            raise SystemExit(f"unknown size {size!r}; known: {', '.join(SIZES)}")
        index = work / f"index-{size}"
        shutil.rmtree(index, ignore_errors=True)
        log(f"[{size}] building")
        if size == "seed":
            build = _run("build_seed", out=str(index))
        else:
            build = _run("build_synthetic", n=SIZES[size], out=str(index), ann_threshold=ann_threshold)
        r: dict = {"build": build}
        log(f"[{size}] {build['chunks']} chunks in {build['build_s']:.1f} s; querying")
        r["query"] = _run("query", index=str(index), n_queries=n_queries)
        if build.get("dense", {}).get("type", "flat") != "flat":
            log(f"[{size}] recall of the approximate index")
            r["recall"] = _run("recall", index=str(index), n_queries=min(100, n_queries))
        if size == "seed":
            log(f"[{size}] cold start, incremental add")
            r["cold"] = _run("cold_start", index=str(index))
            r["incremental"] = _run("incremental", work=str(work))
        if size in ("100k", "2k"):
            log(f"[{size}] bm25s against rank-bm25")
            r["bm25"] = _run("bm25_compare", index=str(index), n_queries=20)
        if size != "seed" and size in backend_sizes:
            for backend in backends:
                other = work / f"index-{size}-{backend}"
                shutil.rmtree(other, ignore_errors=True)
                log(f"[{size}] building for {backend}")
                entry: dict = {
                    "build": _run("build_synthetic", n=SIZES[size], out=str(other), ann_threshold=ann_threshold, backend=backend)
                }
                log(f"[{size}] {backend}: built in {entry['build']['build_s']:.1f} s; querying")
                entry["query"] = _run("query", index=str(other), n_queries=n_queries)
                entry["recall"] = _run("recall_edge", index=str(other), n_queries=min(100, n_queries))
                r.setdefault("backends", {})[backend] = entry
                shutil.rmtree(other, ignore_errors=True)
        results["sizes"][size] = r
        (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_report(results, out)
    return results


def _machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "system": platform.platform()}


def write_report(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = results["sizes"]
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {results['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, by `python -m qa.bench --sizes {','.join(sizes)}`.",
        "Sizes past `seed` are synthetic: chunks of 3 to 5 real sentences (bundled documents and service-public.fr sheets) recombined at random;"
        " each real sentence is embedded once with the real encoder, and a chunk's vector is the mean of its sentences' vectors plus Gaussian"
        f" noise (sigma {NOISE} a coordinate), renormalised (a sentence's vector: its real vector plus the same noise). Warm figures are over"
        " the seed set's questions after 5 warm-up questions per mode.",
        "",
        "![latency and memory against corpus size](benchmarks.png)",
        "",
        "| size | chunks | dense index | build s | chunks/s | peak RSS build MB | disk MB | RSS loaded MB | hybrid p50 ms | hybrid p95 ms | bm25 p50 / p95 | dense p50 / p95 | embed p50 | bm25 stage p50 | dense stage p50 | answer stage p50 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in sizes.items():
        b, q = r["build"], r["query"]
        h = q["hybrid"]
        dense = b.get("dense", {"type": "flat"})
        kind = dense["type"] + (f" (M {dense['M']}, efSearch {dense['ef_search']})" if dense.get("M") else "")
        lines.append(
            f"| {size} | {b['chunks']:,} | {kind} | {b['build_s']:.1f} | {b['chunks_per_s']:,.0f} | {b['peak_rss_mb']:,.0f} | {b['disk_mb']:,.0f} | "
            f"{q['rss_loaded_mb']:,.0f} | {h['total']['p50']:.1f} | {h['total']['p95']:.1f} | {q['bm25']['total']['p50']:.1f} / {q['bm25']['total']['p95']:.1f} | "
            f"{q['dense']['total']['p50']:.1f} / {q['dense']['total']['p95']:.1f} | {h['embed']['p50']:.1f} | {h['bm25']['p50']:.1f} | {h['dense']['p50']:.1f} | {h['answer']['p50']:.1f} |"
        )
    lines += [
        "",
        "Modes run in the order hybrid, bm25, dense over the same questions, so hybrid meets the memory-mapped chunk text and sentence",
        "vectors cold and the two modes after it find them in the page cache (at 1M chunks this is most of hybrid's answer stage).",
        "",
    ]
    seed = sizes.get("seed")
    if seed:
        lines += [
            "## Bundled corpus",
            "",
            f"- Cold start of one `qa ask` process (median of 5): {seed['cold']['cold_start_s']:.2f} s.",
            f"- First full build with the real encoder ({results.get('encoder', '')}): {seed['build']['build_s']:.1f} s"
            f" ({seed['build']['chunks']} chunks and their sentences, {seed['build'].get('embedded_texts', '?')} texts embedded).",
            f"- Rebuild with unchanged texts (`qa index --rebuild`): {seed['build'].get('rebuild_s', float('nan')):.1f} s,"
            f" {seed['build'].get('rebuild_embedded_texts', '?')} texts embedded, {seed['build'].get('rebuild_cached_texts', '?')} read from the embedding cache.",
            f"- Incremental add of one document: {seed['incremental']['add_one_document_s']:.2f} s ({seed['incremental']['embedded_chunks']} chunks embedded).",
            "",
        ]
    for size, r in sizes.items():
        if "recall" in r:
            exact_ms = r["recall"]["exact_numpy_ms_per_query"]
            lines += [
                f"## Approximate dense search at {size} (HNSW against exact search, same process)",
                "",
                "| efSearch | recall@10 vs exact | ms/query | speed-up over exact |",
                "|---|---|---|---|",
            ]
            for ef, v in r["recall"].items():
                if ef.isdigit():
                    lines.append(f"| {ef} | {v['recall@10']:.3f} | {v['ms_per_query']:.2f} | {exact_ms / v['ms_per_query']:.0f}x |")
            lines += ["", f"Exact search in numpy over the stored vectors: {r['recall']['exact_numpy_ms_per_query']:.1f} ms/query.", ""]
        if "backends" in r:
            lines += _backend_section(size, r)
        if "bm25" in r:
            b = r["bm25"]
            lines += [
                f"## BM25 at {size}: bm25s against rank-bm25 (same tokens, same process)",
                "",
                f"bm25s {b['bm25s_ms']:.2f} ms/query, rank-bm25 {b['rank_bm25_ms']:.1f} ms/query: ratio {b['ratio']:.0f}x "
                f"(rank-bm25 index build {b['rank_bm25_build_s']:.1f} s).",
                "",
            ]
    from .bench_load import kept_section

    kept = kept_section(out)  # measured by `qa bench --load`: kept when the sizes are re-run
    out.write_text("\n".join(lines + ([kept, ""] if kept else [])), encoding="utf-8")
    _plot(results, out.with_suffix(".png"))


def _backend_section(size: str, r: dict) -> list[str]:
    """FAISS and the other backends at one size, side by side (same synthetic chunks and vectors)."""
    lines = [
        f"## Backends side by side at {size} chunks (same synthetic chunks and vectors)",
        "",
        "| backend | build s | disk MB | RSS loaded MB | RSS after queries MB | peak RSS query MB | hybrid p50 / p95 ms | bm25 p50 / p95 ms | dense p50 / p95 ms | dense recall@10 vs exact |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    faiss_recall = "1.000 (exact)"
    if "recall" in r:
        ef = str(r["build"]["dense"].get("ef_search", ""))
        faiss_recall = f"{r['recall'][ef]['recall@10']:.3f} (HNSW, efSearch {ef})" if ef in r["recall"] else "–"
    rows = [("faiss + bm25s", r["build"], r["query"], faiss_recall)]
    for name, entry in r["backends"].items():
        rec = entry["recall"]
        rows.append((name, entry["build"], entry["query"], f"{rec['recall@10']:.3f} (hnsw_ef {rec['hnsw_ef']})"))
    for name, b, q, recall in rows:
        lines.append(
            f"| {name} | {b['build_s']:.1f} | {b['disk_mb']:,.0f} | {q['rss_loaded_mb']:,.0f} | {q['rss_after_queries_mb']:,.0f} | {q['peak_rss_mb']:,.0f} | "
            f"{q['hybrid']['total']['p50']:.1f} / {q['hybrid']['total']['p95']:.1f} | {q['bm25']['total']['p50']:.1f} / {q['bm25']['total']['p95']:.1f} | "
            f"{q['dense']['total']['p50']:.1f} / {q['dense']['total']['p95']:.1f} | {recall} |"
        )
    lines += [
        "",
        "Latencies are per question, warm, including the question's embedding and the evidence step. Qdrant Edge answers a hybrid"
        " question in one fused request (prefetch dense and BM25, RRF), plus one small dense request for the feedback terms.",
        "",
    ]
    return lines


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    xs = [r["build"]["chunks"] for r in sizes.values()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("hybrid", "bm25", "dense"):
        ax1.plot(xs, [r["query"][mode]["total"]["p50"] for r in sizes.values()], marker="o", label=f"{mode} p50")
    ax1.plot(xs, [r["query"]["hybrid"]["total"]["p95"] for r in sizes.values()], marker="x", linestyle="--", label="hybrid p95")
    ax1.set(xscale="log", xlabel="chunks", ylabel="ms per question (warm)", title="Query latency")
    ax1.legend()
    ax2.plot(xs, [r["query"]["rss_loaded_mb"] for r in sizes.values()], marker="o", label="RSS, index loaded")
    ax2.plot(xs, [r["build"]["peak_rss_mb"] for r in sizes.values()], marker="s", label="peak RSS, building")
    ax2.set(xscale="log", xlabel="chunks", ylabel="MB", title="Memory")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--load" in argv:
        from .bench_load import main as load_main

        return load_main(argv)
    parser = argparse.ArgumentParser(prog="qa bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="seed,10k,100k", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--work", default=str(ROOT / "build" / "bench"), help="where the benchmark indexes go")
    parser.add_argument("--queries", type=int, default=100, help="warm queries per mode and size")
    parser.add_argument("--ann-threshold", type=int, default=None, help="override the exact/HNSW threshold (smoke tests)")
    parser.add_argument("--backends", default="qdrant-edge", help="other backends to compare with FAISS ('' for none)")
    parser.add_argument("--backend-sizes", default="100k", help="sizes at which they run (comma-separated)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.args))))
        return 0
    from .index import ANN_THRESHOLD

    others = [b.strip() for b in args.backends.split(",") if b.strip() and b.strip() != "faiss"]
    if any(b != "qdrant-edge" for b in others):
        print("qa bench: error: --backends compares faiss with qdrant-edge only (a cluster is not measured here)", file=sys.stderr)
        return 2
    unknown = [s for s in args.sizes.split(",") if s.strip() and s.strip() not in SIZES]
    if unknown:
        print(f"qa bench: error: unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}", file=sys.stderr)
        return 2
    run(
        [s.strip() for s in args.sizes.split(",") if s.strip()],
        Path(args.out),
        Path(args.work),
        args.queries,
        args.ann_threshold or ANN_THRESHOLD,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        backends=tuple(others),
        backend_sizes=tuple(s.strip() for s in args.backend_sizes.split(",") if s.strip()),
    )
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
