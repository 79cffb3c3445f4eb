"""The ``qa`` command: index, ask, chat.

``main(argv) -> int``: 0 on success, 1 on an error (one line on stderr that names the
fix), 2 on bad usage, 3 when a batch had failing lines (the others are still answered).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .config import MAX_K, MODES, load_config
from .errors import QAError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, then exit 2 (argparse's convention)
        raise _UsageError(f"qa: error: {message} (see `{self.prog} --help`)")


class _UsageError(Exception):
    pass


def _k(value: str) -> int:
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be a whole number between 1 and {MAX_K}, got {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qa", description="Cited answers from your French and English documents.")
    parser.add_argument("--config", help="TOML settings file (default: ./qa.toml if present)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("index", help="build or update the index (incremental)")
    p.add_argument("--corpus", default="corpus", help="documents directory (default: corpus)")
    p.add_argument("--index", default="index", help="index directory (default: index)")
    p.add_argument("--model", help="encoder: multilingual-e5-small (default), use-multilingual, or a sentence-transformers name or path")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--backend",
        help="search engine: faiss (default), qdrant-edge (embedded Qdrant shard), qdrant (a cluster, with --url), "
        "or any engine registered in qa.engines; kept by later updates",
    )
    p.add_argument("--url", help="Qdrant address for --backend qdrant, e.g. http://HOST:6333 (API key: QDRANT_API_KEY)")
    p.add_argument("--collection", help="Qdrant collection for --backend qdrant (default: qa)")
    p.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="while another process updates this index: wait at most SECONDS (0: fail at once; default: wait until it is done)",
    )
    _ray_option(p, "embed on Ray actors")

    p = sub.add_parser("ask", help="answer a question, or a JSONL batch")
    p.add_argument("question", nargs="?", help="the question (or use --input)")
    _query_options(p)
    p.add_argument("--json", action="store_true", help="print the answer as JSON (same as --format json)")
    p.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="text (default), json (the schema of the API), or markdown (as the UI's Export: the answer, quotes and references)",
    )
    p.add_argument("--input", help='JSONL file of {"id", "question"} lines')
    p.add_argument("--output", help="JSONL file for the answers (with --input)")
    _ray_option(p, "answer the --input batch on Ray actors")

    p = sub.add_parser("chat", help="ask questions in a terminal loop")
    _query_options(p)

    sub.add_parser("bench", help="benchmarks at growing corpus sizes (see `qa bench --help`)", add_help=False)

    p = sub.add_parser("eval", help="score an eval set of expected citations")
    p.add_argument("file", help="eval set (JSONL)")
    p.add_argument("--index", default="index", help="index directory (default: index)")
    p.add_argument("--corpus", help="corpus to validate quotes against (default: the index's corpus)")
    p.add_argument("-k", type=_k, default=10, help="ranked passages per question (default 10)")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default: the config's)")
    p.add_argument("--compare", action="store_true", help="run every retrieval variant and print one table")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write all figures as JSON")
    p.add_argument("--trec", metavar="OUT", help="write a TREC run (and OUT.qrels)")
    p.add_argument("--fail-under", nargs="+", default=[], metavar="METRIC=VALUE", help="exit 1 if a metric is below its floor")
    p.add_argument("--calibrate", action="store_true", help="choose the abstention threshold and write it to the config")
    p.add_argument("--max-false-abstention", type=float, default=0.03, help="for --calibrate (default 0.03)")
    p.add_argument("--misses", type=int, default=20, help="rows of the misses table (default 20)")

    for name, what in (
        ("remove", "take a document out of the index; its file moves to CORPUS/.removed/ (see `qa restore`)"),
        ("restore", "put a removed document back and index it again; without KEY, list the removed documents"),
    ):
        p = sub.add_parser(name, help=what)
        p.add_argument(
            "key",
            nargs="?" if name == "restore" else None,
            help="document id" if name == "remove" else "removal id, or document id (its newest removal)",
        )
        p.add_argument("--corpus", default="corpus", help="documents directory (default: corpus)")
        p.add_argument("--index", default="index", help="index directory (default: index)")
    return parser


def _ray_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"{what}: a local Ray, or the cluster at ADDRESS (needs pip install 'qa[scale]')",
    )


def _query_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", default="index", help="index directory (default: index)")
    p.add_argument("--corpus", default="corpus", help="corpus to index first if the index is missing")
    p.add_argument("-k", type=_k, default=None, help=f"number of passages, 1..{MAX_K} (default 5)")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default hybrid)")
    p.add_argument("--lang", choices=("fr", "en"), help="only passages in this language")
    p.add_argument("--doc", help="only passages of this document id")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        if args.command == "index":
            return _cmd_index(args)
        if args.command == "ask":
            return _cmd_ask(args)
        if args.command == "chat":
            return _cmd_chat(args)
        if args.command == "eval":
            from .evalcli import cmd_eval

            return cmd_eval(args)
        if args.command in ("remove", "restore"):
            return _cmd_documents(args)
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        sys.stderr.close()  # the reader (e.g. `| head`) went away; nothing left to say
        return EXIT_OK
    except OSError as exc:
        print(f"qa: error: {exc.strerror or exc}: {exc.filename or ''} (check the path and its permissions)", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


def _cmd_index(args: argparse.Namespace) -> int:
    from .index import build_index

    config = load_config(args.config)
    if args.url == ":memory:":
        raise QAError("--url :memory: would vanish with this process; give the address of a Qdrant server, e.g. http://HOST:6333")
    encoder = None
    if args.ray is not None:
        from .config import DEFAULT_MODEL
        from .distributed import RayEncoder
        from .index import live_manifest

        # The model build_index would use: the one given, else the live version's.
        model = args.model or (live_manifest(args.index) or {}).get("encoder", {}).get("name", DEFAULT_MODEL)
        encoder = RayEncoder(model, args.ray or None)
    report = build_index(
        args.corpus,
        args.index,
        model=args.model,
        chunking=config.chunking,
        rebuild=args.rebuild,
        encoder=encoder,
        backend=args.backend,
        url=args.url,
        collection=args.collection,
        progress=not args.quiet and sys.stderr.isatty(),
        log=lambda m: print(m, file=sys.stderr, flush=True),
        lock_timeout=args.lock_timeout,
    )
    print(report.summary())
    return EXIT_OK


def _open_assistant(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .answer import Assistant

    return Assistant.open(args.index, config=_prepare(args))


def _prepare(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Index the corpus first if there is no index; the retrieval settings to ask with."""
    from .index import build_index, index_exists

    config = load_config(args.config)
    if not index_exists(args.index):
        print(f"no index at {args.index}: building it from {args.corpus} first", file=sys.stderr)
        report = build_index(
            args.corpus, args.index, chunking=config.chunking, progress=sys.stderr.isatty(), log=lambda m: print(m, file=sys.stderr)
        )
        print(report.summary(), file=sys.stderr)
    retrieval = config.retrieval
    if args.mode:
        retrieval = replace(retrieval, mode=args.mode)
    return retrieval


def _cmd_ask(args: argparse.Namespace) -> int:
    from .answer import validate_question

    if args.input:
        if args.question:
            raise QAError("give either a question or --input FILE, not both")
        if not args.output:
            raise QAError("--input needs --output FILE for the answers")
        return _batch(args)
    if args.ray is not None:
        raise QAError("--ray answers a batch: add --input FILE --output FILE (one question runs here)")
    if args.output:
        raise QAError("--output goes with --input FILE")
    if args.question is None:
        raise QAError('no question: qa ask "your question" (or --input FILE --output FILE)')
    validate_question(args.question)
    assistant = _open_assistant(args)
    answer = assistant.ask(args.question, k=args.k, lang=args.lang, doc=args.doc)
    if args.json or args.format == "json":
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    elif args.format == "markdown":
        from .export import answer_markdown

        print(answer_markdown(answer, assistant.documents))
    else:
        print(format_answer(answer, assistant))
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    """Answer a JSONL file of questions, here or (``--ray``) on Ray actors: the same records,
    in input order; a bad line is reported with its number and the others are answered."""
    from .answer import validate_question

    path = Path(args.input)
    if not path.exists():
        raise QAError(f"input file not found: {path}")
    config = _prepare(args)
    failures = 0
    asked: list[tuple[int, object, str]] = []  # (line number, id, question)
    with open(path, "rb") as fin:
        for lineno, raw_line in enumerate(fin, start=1):
            if not raw_line.strip():
                continue
            try:
                item = json.loads(raw_line.decode("utf-8"))  # JSONDecodeError, UnicodeDecodeError: ValueErrors
                if not isinstance(item, dict) or "question" not in item:
                    raise ValueError('expected an object with "id" and "question"')
                asked.append((lineno, item.get("id", lineno), validate_question(item["question"])))
            except (ValueError, QAError) as exc:
                failures += 1
                print(f"qa: {path}:{lineno}: skipped: {exc}", file=sys.stderr)
    options = {"k": args.k, "lang": args.lang, "doc": args.doc}

    def answered_here():  # type: ignore[no-untyped-def]
        from .answer import Assistant

        assistant = Assistant.open(args.index, config=config)
        for _, _, question in asked:
            try:
                yield assistant.ask(question, **options).to_dict()  # type: ignore[arg-type]
            except (ValueError, QAError) as exc:
                yield {"error": str(exc)}

    answered = 0
    with open(args.output, "w", encoding="utf-8") as fout:  # opened first: a bad path fails before any work
        if args.ray is not None:
            from .distributed import answer_batch

            pairs = [(i, question) for i, (_, _, question) in enumerate(asked)]
            records = answer_batch(args.index, pairs, config=config, address=args.ray or None, **options)  # type: ignore[arg-type]
        else:
            records = answered_here()  # written as they come
        for (lineno, item_id, _), record in zip(asked, records):  # both in input order
            record.pop("id", None)
            if "error" in record:
                failures += 1
                print(f"qa: {path}:{lineno}: skipped: {record['error']}", file=sys.stderr)
                continue
            fout.write(json.dumps({"id": item_id, **record}, ensure_ascii=False) + "\n")
            answered += 1
    print(f"answered {answered} questions into {args.output}" + (f"; {failures} lines failed" if failures else ""), file=sys.stderr)
    return EXIT_PARTIAL if failures else EXIT_OK


def _cmd_documents(args: argparse.Namespace) -> int:
    """qa remove DOC, qa restore [KEY]."""
    from .corpus import removed_documents

    if args.command == "restore" and args.key is None:
        entries = removed_documents(args.corpus)
        for e in entries:
            print(f"{e.id}\t{e.doc_id}\t{e.path}\tremoved {e.removed}")
        if not entries:
            print(f"no removed documents in {args.corpus}/.removed/", file=sys.stderr)
        return EXIT_OK
    from .service import Library

    library = Library(args.corpus, args.index, config=load_config(args.config).retrieval, log=lambda m: print(m, file=sys.stderr))
    if args.command == "remove":
        report = library.remove_document(args.key)
        print(f"removed {args.key}: its file is kept in {args.corpus}/.removed/ (`qa restore {args.key}` puts it back)")
    else:
        report = library.restore(args.key)
        print(f"restored {args.key}")
    print(report.summary())
    return EXIT_OK


def _cmd_chat(args: argparse.Namespace) -> int:
    assistant = _open_assistant(args)
    print(f"qa chat: {len(assistant.documents)} documents indexed. Ask in French or English; an empty line or Ctrl-D quits.")
    while True:
        try:
            question = input("\n? ")
        except EOFError:
            print()
            return EXIT_OK
        if not question.strip():
            return EXIT_OK
        try:
            answer = assistant.ask(question, k=args.k, lang=args.lang, doc=args.doc)
        except QAError as exc:
            print(f"error: {exc}")
            continue
        print(format_answer(answer, assistant))


def format_answer(answer, assistant) -> str:  # type: ignore[no-untyped-def]
    lines = []
    if answer.abstained:
        lines.append(answer.not_answered())
        if answer.related:
            lines.append("\nClosest passages (related, not citations):")
        shown = answer.related
    else:
        lines.append(f"Answer: {answer.answer}")
        shown = answer.citations
    for c in shown:
        where = f"p. {c.page}" if c.page else (c.section or "")
        note = " (note)" if c.kind == "note" else ""
        publisher = assistant.publisher(c.doc_id)
        source = f"{c.title} ({publisher})" if publisher else c.title
        lines.append(f"\n[{c.rank}] {source} — {where}{note} [{c.doc_id}, chars {c.start}-{c.end}, score {c.score:.2f}]")
        before, evidence, after = c.split_evidence()
        text = f"{before}>>>{evidence}<<<{after}"
        lines.append("    " + text.replace("\n", "\n    "))
    lines.append(f"\n({answer.timings_ms.get('total', 0):.0f} ms)")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
