"""Benchmarks: how cost grows with corpus size. Figures, never timed tests.

    python -m qa.bench --sizes seed,10k,100k,1m      (also: qa bench ...)
    qa bench --load                                  (load and soak: qa/bench_load.py)

Writes ``docs/benchmarks.md`` (table, machine, date) and ``docs/benchmarks.png`` (latency
and memory against corpus size). Each figure comes from a fresh subprocess, so that its
peak RSS is its own; comparisons run side by side in one process and are also given as
ratios, since these machines are noisy. The workers, and how sizes past the bundled
corpus are synthesised, are in ``qa.bench_workers``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from .bench_load import kept_section, report_path
from .bench_load import main as load_main
from .bench_workers import NOISE, ROOT, SIZES, WORKERS


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
        return load_main(argv)
    parser = argparse.ArgumentParser(prog="qa bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="seed,10k,100k", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report file, or a folder for benchmarks.md")
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
    from .engines.local import ANN_THRESHOLD

    others = [b.strip() for b in args.backends.split(",") if b.strip() and b.strip() != "faiss"]
    if any(b != "qdrant-edge" for b in others):
        print("qa bench: error: --backends compares faiss with qdrant-edge only (a cluster is not measured here)", file=sys.stderr)
        return 2
    unknown = [s for s in args.sizes.split(",") if s.strip() and s.strip() not in SIZES]
    if unknown:
        print(f"qa bench: error: unknown size(s) {', '.join(unknown)}; known: {', '.join(SIZES)}", file=sys.stderr)
        return 2
    out = report_path(args.out)
    if out is None:
        return 2
    run(
        [s.strip() for s in args.sizes.split(",") if s.strip()],
        out,
        Path(args.work),
        args.queries,
        args.ann_threshold or ANN_THRESHOLD,
        log=lambda m: print(m, file=sys.stderr, flush=True),
        backends=tuple(others),
        backend_sizes=tuple(s.strip() for s in args.backend_sizes.split(",") if s.strip()),
    )
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
