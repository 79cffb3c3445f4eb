"""The chat UI: cited, highlighted passages over your documents (Gradio).

    python app.py [--index index] [--corpus corpus] [--host 127.0.0.1] [--port 7860]

Set QA_AUTH=user:password to require a login. Adding, removing and restoring documents
are refused (in the UI and on the API) unless QA_AUTH is set or --allow-edits is given.
All retrieval happens in `qa`; this file only renders answers and forwards document
changes to `qa.service.Library`.
"""

from __future__ import annotations

import argparse
import html
import os
import sys

import gradio as gr

from qa.errors import QAError
from qa.service import DEFAULT_MAX_UPLOAD_MB, Library

EXAMPLES = [
    "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?",
    "When was NATO's military liaison office in Belgrade established?",
    "Quels sont les cinq piliers de la stratégie française pour les Balkans occidentaux ?",
    "How many votes did the European Parliament resolution on defence partnerships get?",
]
CSS = """
.qa-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 10px; margin: 8px 0; background: #fff;}
.qa-head {font-size: 0.85em; color: #57606a; margin-bottom: 4px;}
.qa-passage {white-space: pre-wrap; line-height: 1.4;}
mark.qa-evidence {background: #fff3a3; padding: 0 2px;}
.qa-related {color: #57606a;}
#qa-viewer {max-height: 520px; overflow-y: auto; white-space: pre-wrap; font-family: ui-monospace, monospace;
            font-size: 0.85em; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px; background: #fafafa;}
#qa-viewer mark.qa-span {background: #dbeafe;}
#qa-viewer mark.qa-span strong {background: #fff3a3;}
"""
SCROLL_JS = "() => { const m = document.getElementById('qa-hit'); if (m) m.scrollIntoView({block: 'center'}); }"


# ---------------------------------------------------------------------------------------
# Rendering


def _card(c, publisher: str) -> str:
    where = f"p. {c.page}" if c.page else html.escape(c.section or "")
    note = " · note" if c.kind == "note" else ""
    head = " · ".join(x for x in (html.escape(c.title), html.escape(publisher), c.language.upper(), where) if x)
    before, evidence, after = c.split_evidence()
    body = html.escape(before) + f'<mark class="qa-evidence">{html.escape(evidence)}</mark>' + html.escape(after)
    return (
        f'<div class="qa-card" data-rank="{c.rank}"><div class="qa-head">[{c.rank}] {head}{note} · '
        f'chars {c.start}–{c.end} · score {c.score:.2f}</div><div class="qa-passage">{body}</div></div>'
    )


def render_answer(answer, library: Library) -> str:
    publisher = library.assistant.publisher
    if answer.abstained:
        parts = ['<p class="qa-summary"><strong>The documents do not answer this question.</strong></p>']
        if answer.related:
            parts.append('<details class="qa-related"><summary>Related passages (not citations)</summary>')
            parts += [_card(c, publisher(c.doc_id)) for c in answer.related]
            parts.append("</details>")
    else:
        parts = [f'<p class="qa-summary"><strong>{html.escape(answer.answer)}</strong></p>']
        parts += [_card(c, publisher(c.doc_id)) for c in answer.citations]
    parts.append(f'<p class="qa-head">{answer.timings_ms.get("total", 0):.0f} ms</p>')
    return "\n".join(parts)


def render_document(raw: str, spans: list[list[int]], evidence: tuple[int, int] | None) -> str:
    """The document's raw text, the cited spans marked and the evidence in bold."""
    cuts = {0, len(raw)}
    for s, e in spans:
        cuts |= {s, e}
    if evidence:
        cuts |= set(evidence)
    cuts_sorted = sorted(c for c in cuts if 0 <= c <= len(raw))
    out, first = [], True
    for a, b in zip(cuts_sorted, cuts_sorted[1:]):
        piece = html.escape(raw[a:b])
        in_span = any(s <= a and b <= e for s, e in spans)
        if in_span and evidence and evidence[0] <= a and b <= evidence[1]:
            piece = f"<strong>{piece}</strong>"
        if in_span:
            anchor = ' id="qa-hit"' if first else ""
            first = False
            piece = f'<mark class="qa-span"{anchor}>{piece}</mark>'
        out.append(piece)
    return f'<div id="qa-viewer">{"".join(out)}</div>'


# ---------------------------------------------------------------------------------------
# The app


EDITS_OFF = (
    "Document changes are off: anyone who can reach this port could make them. "
    "Start the app with QA_AUTH=user:password (a login) or with --allow-edits to turn them on."
)


def build_app(library: Library, *, edits: bool = False) -> gr.Blocks:
    """The UI over ``library``. ``edits``: whether uploads, removals and restores are
    allowed (refused otherwise, on the API too)."""

    def doc_choices() -> list[str]:
        return ["any", *sorted(library.documents())]

    def doc_table() -> list[list[str]]:
        return [
            [d, m["title"], m.get("publisher", ""), m["language"], m.get("date", ""), str(m["chunks"])]
            for d, m in sorted(library.documents().items())
        ]

    def ask_json(question: str, k: int = 5, mode: str = "hybrid", lang: str = "", doc: str = "") -> dict:
        """Answer a question; the result has the schema of `qa ask --json`."""
        try:
            answer = library.ask(question, k=int(k), mode=mode or None, lang=lang or None, doc=doc or None)
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        return answer.to_dict()

    def respond(question, history, k, mode, lang, doc):
        history = list(history or [])
        try:
            answer = library.ask(question, k=int(k), mode=mode, lang=None if lang == "any" else lang, doc=None if doc == "any" else doc)
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": render_answer(answer, library)}]
        shown = answer.citations or answer.related
        cites = [
            {
                "doc_id": c.doc_id,
                "spans": c.spans,
                "evidence": [c.evidence.start, c.evidence.end],
                "label": f"[{c.rank}] {c.title}" + (f" — p. {c.page}" if c.page else ""),
            }
            for c in shown
        ]
        choices = [(c["label"], str(i)) for i, c in enumerate(cites)]
        return history, "", cites, gr.update(choices=choices, value=None), f"{answer.timings_ms.get('total', 0):.0f} ms"

    def show_citation(choice, cites):
        if choice is None or not cites:
            return '<div id="qa-viewer">Ask a question, then pick a citation to see it in its document.</div>'
        c = cites[int(choice)]
        try:
            return render_document(library.raw_text(c["doc_id"]), c["spans"], tuple(c["evidence"]))
        except (QAError, OSError):
            return '<div id="qa-viewer">This document changed or was removed since the answer: ask again.</div>'

    def removed_choices() -> list[tuple[str, str]]:
        return [(f"{e.doc_id} (removed {e.removed})", e.id) for e in library.removed()]

    def upload(file, progress=gr.Progress()):
        if not edits:
            return f"Refused: {EDITS_OFF}", doc_table(), gr.update(choices=doc_choices()), gr.update(choices=sorted(library.documents()))
        if file is None:
            return "No file.", doc_table(), gr.update(choices=doc_choices()), gr.update(choices=sorted(library.documents()))
        path = file if isinstance(file, str) else file.name
        progress(0.1, desc="indexing")
        try:
            report = library.add_document(path, os.path.basename(path))
            message = f"Added {os.path.basename(path)}: {report.summary()}"
        except QAError as exc:
            message = f"Refused: {exc}"
        progress(1.0)
        return message, doc_table(), gr.update(choices=doc_choices()), gr.update(choices=sorted(library.documents()))

    def remove_document(doc_id: str) -> str:
        """Take a document out of the index; its file is kept under corpus/.removed/ for
        /restore. Returns what was done."""
        if not edits:
            return f"Refused: {EDITS_OFF}"
        try:
            return f"Removed {doc_id} (kept in corpus/.removed/, restore it below): {library.remove_document(doc_id).summary()}"
        except QAError as exc:
            return f"Refused: {exc}"

    def restore_document(key: str) -> str:
        """Put a removed document back (by removal id or document id) and index it again."""
        if not edits:
            return f"Refused: {EDITS_OFF}"
        try:
            return f"Restored {key}: {library.restore(key).summary()}"
        except QAError as exc:
            return f"Refused: {exc}"

    def after_change(message):
        return (
            message,
            doc_table(),
            gr.update(choices=doc_choices()),
            gr.update(choices=sorted(library.documents()), value=None),
            gr.update(choices=removed_choices(), value=None),
        )

    with gr.Blocks(title="qa — cited answers") as demo:
        gr.Markdown(
            "## qa — cited answers from your documents\nAsk in French or English. Each answer cites the passages it comes from; the highlighted sentence is the evidence."
        )
        cites_state = gr.State([])
        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="Answers", height=560, sanitize_html=False, elem_id="qa-chat")
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Votre question / your question", show_label=False, scale=5, elem_id="qa-question"
                        )
                        send = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                    gr.Examples(EXAMPLES, inputs=question)
                    timing = gr.Markdown("", elem_id="qa-timing")
                with gr.Column(scale=2):
                    with gr.Accordion("Settings", open=False):
                        k = gr.Slider(1, 20, value=library.config.k, step=1, label="Passages")
                        mode = gr.Radio(["hybrid", "bm25", "dense"], value=library.config.mode, label="Retrieval")
                        lang = gr.Dropdown(["any", "fr", "en"], value="any", label="Language of passages")
                        doc = gr.Dropdown(doc_choices(), value="any", label="Document")
                    pick = gr.Dropdown([], label="Show a citation in its document", elem_id="qa-pick")
                    viewer = gr.HTML(show_citation(None, []), elem_id="qa-viewer-box")
        with gr.Tab("Documents"):
            table = gr.Dataframe(
                doc_table(),
                headers=["id", "title", "publisher", "language", "date", "chunks"],
                interactive=False,
                label="Indexed documents",
            )
            if not edits:
                gr.Markdown(EDITS_OFF, elem_id="qa-edits-off")
            upload_box = gr.File(
                label=f"Add a document (.txt .md .html .pdf, up to {library.max_upload_mb:g} MB)",
                file_types=[".txt", ".md", ".html", ".htm", ".pdf"],
                type="filepath",
                interactive=edits,
            )
            with gr.Row():
                to_remove = gr.Dropdown(
                    sorted(library.documents()), label="Remove a document (its file is kept)", interactive=edits, elem_id="qa-remove-pick"
                )
                remove_btn = gr.Button("Remove", interactive=edits, elem_id="qa-remove")
            with gr.Row():
                to_restore = gr.Dropdown(
                    removed_choices(), label="Restore a removed document", interactive=edits, elem_id="qa-restore-pick"
                )
                restore_btn = gr.Button("Restore", interactive=edits, elem_id="qa-restore")
            status = gr.Markdown("", elem_id="qa-doc-status")

        inputs = [question, chat, k, mode, lang, doc]
        outputs = [chat, question, cites_state, pick, timing]
        send.click(respond, inputs, outputs, api_visibility="private")
        question.submit(respond, inputs, outputs, api_visibility="private")
        pick.change(show_citation, [pick, cites_state], viewer, api_visibility="private").then(None, js=SCROLL_JS)
        changed = [status, table, doc, to_remove, to_restore]
        upload_box.upload(upload, upload_box, [status, table, doc, to_remove], api_name="upload")
        remove_btn.click(lambda d: after_change(remove_document(d)), to_remove, changed, api_visibility="private")
        restore_btn.click(lambda key: after_change(restore_document(key)), to_restore, changed, api_visibility="private")
        gr.api(ask_json, api_name="ask")
        gr.api(remove_document, api_name="remove")
        gr.api(restore_document, api_name="restore")
    return demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="qa chat UI")
    parser.add_argument("--index", default="index")
    parser.add_argument("--corpus", default="corpus")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: localhost only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-upload-mb", type=float, default=float(os.environ.get("QA_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)))
    parser.add_argument(
        "--allow-edits",
        action="store_true",
        help="allow adding, removing and restoring documents without a login (on by itself with QA_AUTH)",
    )
    args = parser.parse_args(argv)
    auth = None
    if os.environ.get("QA_AUTH"):
        user, sep, password = os.environ["QA_AUTH"].partition(":")
        if not sep or not user or not password:
            print("qa: error: QA_AUTH must be user:password", file=sys.stderr)
            return 1
        auth = (user, password)
    try:
        library = Library(args.corpus, args.index, max_upload_mb=args.max_upload_mb, log=lambda m: print(m, file=sys.stderr))
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    demo = build_app(library, edits=bool(auth) or args.allow_edits)
    print(f"qa UI on http://{args.host}:{args.port}", flush=True)
    demo.queue(default_concurrency_limit=8).launch(
        server_name=args.host,
        server_port=args.port,
        auth=auth,
        show_error=True,
        css=CSS,
        quiet=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
