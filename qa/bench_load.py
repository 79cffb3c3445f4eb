"""Load and soak: a running ``app.py`` driven by concurrent API clients, and one process
answering thousands of questions. Figures, never timed tests.

    qa bench --load [--clients 1,8,32] [--questions 25] [--soak 2000]

* Load: starts ``app.py`` on a free port over the bundled index, asks the questions once
  in a row (the reference answers), then with 1, 8 and 32 concurrent ``gradio_client``
  clients asking the same questions each: p50/p95 latency per question, throughput,
  errors, and whether every answer equals the sequential one (same abstention, same
  cited passages in the same order, same evidence).
* Soak: one process asks ``--soak`` questions (the seed set's, round and round, each
  time with a different suffix so that no cache answers it) and reports its RSS before
  and after: caches must stay bounded.

Writes the ``Load and soak`` section of ``docs/benchmarks.md`` (the rest is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from .bench_workers import _questions, _rss_mb
from .evaluate import percentile

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- load: written by qa bench --load -->", "<!-- /load -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(*args: str, output: int | None = subprocess.DEVNULL) -> tuple[subprocess.Popen, str]:
    """``app.py ARGS`` on a free port, once it answers: (process, URL).

    Raises:
        RuntimeError: it exited or did not answer within 2 minutes (with its output, if kept).
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args, "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT if output == subprocess.PIPE else output,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"app.py did not start: {proc.stdout.read() if proc.stdout else ''}") from None
            time.sleep(0.5)


def _key(answer: dict) -> tuple:
    """What must not change between a sequential and a concurrent answer."""
    shown = answer["citations"] or answer["related"]
    return answer["abstained"], answer["answer"], tuple((c["chunk_id"], c["evidence"]["start"], c["evidence"]["end"]) for c in shown)


def load(index: Path, corpus: Path, clients: list[int], questions: list[str], log) -> dict:  # type: ignore[no-untyped-def]
    from gradio_client import Client

    proc, url = start_app("--index", str(index), "--corpus", str(corpus))
    try:

        def ask(client, q):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            answer = client.predict(q, 5, "hybrid", "", "", api_name="/ask")
            return (time.perf_counter() - t) * 1000, answer

        first = Client(url, verbose=False)
        for q in questions[:3]:
            ask(first, q)  # warm-up
        reference = {q: _key(ask(first, q)[1]) for q in questions}
        rss_start = _rss_mb(proc.pid)
        out: dict = {"server_rss_start_mb": rss_start, "runs": {}}
        for n in clients:
            log(f"[load] {n} client(s) x {len(questions)} questions")
            pool = [Client(url, verbose=False) for _ in range(n)]

            def one(i: int, pool: list = pool) -> list[tuple[float, str, object]]:
                rows = []
                order = questions[i % len(questions) :] + questions[: i % len(questions)]  # each client its own order
                for q in order:
                    try:
                        ms, answer = ask(pool[i], q)
                        rows.append((ms, q, _key(answer)))
                    except Exception as exc:  # an error is a figure here, not a crash
                        rows.append((float("nan"), q, exc))
                return rows

            t = time.perf_counter()
            with ThreadPoolExecutor(n) as ex:
                rows = [r for part in ex.map(one, range(n)) for r in part]
            wall = time.perf_counter() - t
            ok = [r for r in rows if not isinstance(r[2], Exception)]
            latencies = [r[0] for r in ok]
            out["runs"][str(n)] = {
                "questions": len(rows),
                "errors": len(rows) - len(ok),
                "different_from_sequential": sum(1 for ms, q, key in ok if key != reference[q]),
                "p50_ms": statistics.median(latencies) if latencies else float("nan"),
                "p95_ms": percentile(latencies, 95),
                "throughput_qps": len(ok) / wall,
                "wall_s": wall,
            }
        out["server_rss_end_mb"] = _rss_mb(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def soak(index: Path, n: int, log) -> dict:  # type: ignore[no-untyped-def]
    from .answer import Assistant

    assistant = Assistant.open(index)
    questions = _questions()
    for q in questions[:20]:
        assistant.ask(q)
    before = _rss_mb()
    t = time.perf_counter()
    marks = {}
    for i in range(n):
        assistant.ask(f"{questions[i % len(questions)]} ({i // len(questions)})")
        if (i + 1) % max(1, n // 4) == 0:
            marks[i + 1] = _rss_mb()
            log(f"[soak] {i + 1} questions, RSS {marks[i + 1]:.0f} MB")
    return {"questions": n, "rss_before_mb": before, "rss_after_mb": _rss_mb(), "rss_marks_mb": marks, "seconds": time.perf_counter() - t}


def write_section(results: dict, out: Path) -> None:
    load_runs, s = results["load"]["runs"], results["soak"]
    lines = [
        START,
        "## Load and soak",
        "",
        f"Run {results['date']} on {os.cpu_count()} cores by `qa bench --load` (bundled corpus, default settings): `app.py` on"
        f" localhost, each client a `gradio_client.Client` asking the same {results['questions']} seed questions through `/ask`"
        " (k 5, hybrid), each in its own order. The app runs 8 questions at a time (Gradio queue); the rest wait in its queue.",
        "",
        "| clients | questions | errors | answers different from the sequential ones | p50 ms | p95 ms | throughput q/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in load_runs.items():
        lines.append(
            f"| {n} | {r['questions']} | {r['errors']} | {r['different_from_sequential']} | "
            f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['throughput_qps']:.1f} |"
        )
    marks = ", ".join(f"{k}: {v:.0f}" for k, v in s["rss_marks_mb"].items())
    lines += [
        "",
        f"Server RSS {results['load']['server_rss_start_mb']:.0f} MB after the sequential pass, "
        f"{results['load']['server_rss_end_mb']:.0f} MB after all the concurrent runs.",
        "",
        f"Soak: one process asked {s['questions']:,} distinct questions in {s['seconds']:.0f} s; RSS {s['rss_before_mb']:.0f} MB after 20"
        f" warm-up questions, {s['rss_after_mb']:.0f} MB at the end (after n questions, MB: {marks}).",
        END,
    ]
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + "\n".join(lines) + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    out.write_text(text, encoding="utf-8")


def kept_section(out: Path) -> str:
    """The load section of an existing report, for ``qa bench`` to keep when it rewrites it."""
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    return text[text.index(START) : text.index(END) + len(END)] if START in text and END in text else ""


def report_path(out: str) -> Path | None:
    """Where ``--out`` writes: the file given, or ``benchmarks.md`` inside a folder given.
    None, after a one-line error, when its folder does not exist (checked before any run)."""
    path = Path(out)
    if path.is_dir():
        path = path / "benchmarks.md"
    if not path.parent.is_dir():
        print(f"qa bench: error: --out {out}: folder {path.parent} does not exist; create it or pass another path", file=sys.stderr)
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa bench --load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", default=str(ROOT / "index"))
    parser.add_argument("--corpus", default=str(ROOT / "corpus"))
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per run (comma-separated)")
    parser.add_argument("--questions", type=int, default=25, help="questions per client")
    parser.add_argument("--soak", type=int, default=2000, help="questions in the soak")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report file, or a folder for benchmarks.md")
    args = parser.parse_args(argv)
    out = report_path(args.out)
    if out is None:
        return 2
    from .index import index_exists

    if not index_exists(args.index):
        print(f"qa bench: error: no index at {args.index}: run `qa index` first", file=sys.stderr)
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    questions = _questions()[: args.questions]
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "questions": len(questions),
        "load": load(Path(args.index), Path(args.corpus), [int(c) for c in args.clients.split(",")], questions, log),
        "soak": soak(Path(args.index), args.soak, log),
    }
    print(json.dumps(results, indent=2))
    write_section(results, out)
    print(f"wrote the load section of {out}", file=sys.stderr)
    return 0
