"""`qa eval`: run an eval set, print the tables, write JSON/TREC, enforce floors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from .config import load_config
from .errors import InputError

# Retrieval variants that --compare runs side by side (overrides of the retrieval config).
VARIANTS: dict[str, dict[str, object]] = {
    "bm25": {"mode": "bm25", "rerank": False},
    "dense": {"mode": "dense", "rerank": False},
    "dense+rerank": {"mode": "dense"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf", "rerank": False},
    "hybrid-rrf+rerank": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-convex": {"mode": "hybrid", "rerank": False},
    "hybrid": {"mode": "hybrid"},
}
MAIN_METRICS = (
    "hit@1",
    "hit@5",
    "hit@{k}",
    "mrr@{k}",
    "ndcg@{k}",
    "doc@1",
    "doc@5",
    "evidence@1",
    "abstention_recall",
    "false_abstention",
    "median_passage_chars",
    "latency_p50_ms",
    "latency_p95_ms",
)


def _floors(specs: list[str], k: int) -> dict[str, float]:
    floors = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            floors[name.replace("@k", f"@{k}")] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--fail-under takes METRIC=VALUE, e.g. hit@5=0.9; got {spec!r}")
    return floors


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and not value.is_integer() or isinstance(value, float) and value < 1:
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(int(value))


def _table(rows: list[tuple[str, dict[str, float]]], columns: list[str], first: str) -> str:
    widths = [max(len(first), *(len(name) for name, _ in rows))] + [max(len(c), 6) for c in columns]
    lines = ["  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(columns, widths[1:])])]
    for name, values in rows:
        lines.append("  ".join([name.ljust(widths[0])] + [_fmt(values.get(c)).rjust(w) for c, w in zip(columns, widths[1:])]))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluate as ev
    from .answer import Assistant
    from .index import Index

    config = load_config(args.config)
    index = Index.load(args.index)
    corpus = args.corpus or index.manifest.get("corpus", "corpus")
    questions = ev.load_eval_set(args.file, ev.corpus_texts(corpus))
    floors = _floors(args.fail_under, args.k)
    known = {c.format(k=args.k) for c in MAIN_METRICS} | {f"hit@{args.k}", f"doc@{args.k}", "questions", "answerable", "unanswerable"}
    unknown = sorted(set(floors) - known)
    if unknown:
        raise InputError(f"--fail-under: unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    doc_languages = {d: m["language"] for d, m in index.manifest["documents"].items()}
    base = config.retrieval if args.mode is None else replace(config.retrieval, mode=args.mode)
    first = Assistant(index, config=base)
    encoder = first.encoder
    variants = {name: replace(base, **over) for name, over in VARIANTS.items()} if args.compare else {base.mode: base}
    figures: dict[str, dict] = {}
    main_name = "hybrid" if args.compare else base.mode
    main_results = None
    for name, cfg in variants.items():
        assistant = Assistant(index, config=cfg, encoder=encoder, backend=first.backend)  # one engine for all variants
        results = ev.run_eval(assistant, questions, k=args.k)
        figures[name] = ev.metrics(results, args.k, index.chunks)
        if name == main_name:
            main_results = results
    assert main_results is not None
    columns = [c.format(k=args.k) for c in MAIN_METRICS]
    title = f"{args.file}: {len(questions)} questions ({figures[main_name]['answerable']} answerable), k={args.k}"
    print(title)
    print(_table(list(figures.items()), columns, "variant"))
    slice_figures = ev.slices(main_results, args.k, doc_languages)
    print(f"\nSlices ({main_name}): question language → evidence language, and tags")
    print(
        _table(
            list(slice_figures.items()),
            ["questions", "hit@1", "hit@5", f"mrr@{args.k}", "evidence@1", "abstention_recall", "false_abstention"],
            "slice",
        )
    )
    missed = ev.misses(main_results)
    if missed and args.misses > 0:
        print(f"\nMisses at rank 1 ({main_name}; {len(missed)}):")
        for row in missed[: args.misses]:
            print(f"  {row['id']}: rank {row['rank'] or '-'} | expected {row['expected']} | first: {row['got']}")
    if args.json_out:
        payload = {"file": args.file, "k": args.k, "variants": figures, "slices": slice_figures, "misses": missed}
        Path(args.json_out).write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.trec:
        run, qrels = ev.write_trec(main_results, index.chunks, args.trec, run_name=main_name)
        print(f"\nTREC run: {run} (qrels: {qrels})")
    if args.calibrate:
        cal = ev.calibrate(main_results, args.max_false_abstention)
        target = args.config or "qa.toml"
        ev.write_threshold(target, cal.threshold)
        print(
            f"\nabstain_threshold = {cal.threshold} written to {target}: abstention recall {cal.abstention_recall:.3f}, "
            f"false abstention {cal.false_abstention:.3f} on this set"
        )
    failed = []
    for name, floor in floors.items():
        value = figures[main_name].get(name)
        if value is None:
            raise InputError(f"--fail-under: unknown metric {name!r}; known: {', '.join(sorted(figures[main_name]))}")
        lower_is_better = name in ("false_abstention", "median_passage_chars") or name.startswith("latency")
        if (value > floor) if lower_is_better else (value < floor):
            failed.append(f"{name} {value:.3f} {'>' if lower_is_better else '<'} {floor}")
    if failed:
        print("FAIL: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0
