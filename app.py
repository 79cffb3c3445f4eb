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
import json
import os
import sys
import tempfile

import gradio as gr

from qa.errors import QAError
from qa.export import STYLES, answer_markdown, citation_text, place, session_markdown
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
.qa-card[data-open] {cursor: pointer;}
.qa-card[data-open]:hover {border-color: #0969da;}
.qa-xling {background: #ddf4ff; border-radius: 4px; padding: 0 4px;}
.qa-copy {font-size: 0.85em; border: 1px solid #d0d7de; border-radius: 4px; padding: 0 6px; background: #f6f8fa; cursor: pointer;}
#qa-open {display: none;}
#qa-viewer {max-height: 520px; overflow-y: auto; white-space: pre-wrap; font-family: ui-monospace, monospace;
            font-size: 0.85em; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px; background: #fafafa;}
#qa-viewer mark.qa-span {background: #dbeafe;}
#qa-viewer mark.qa-span strong {background: #fff3a3;}
"""
SCROLL_JS = "() => { const m = document.getElementById('qa-hit'); if (m) m.scrollIntoView({block: 'center'}); }"
# After an answer: its first line at the top of the chat, so the answer and citation [1] show.
ANSWER_FIRST_JS = """
() => {
  const s = document.querySelectorAll('#qa-chat .qa-summary');
  if (!s.length) return;
  const first = s[s.length - 1];
  first.scrollIntoView({block: 'start'});
  let box = first.parentElement;  // the chat's scrolling box: clear of its label
  while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
  if (box) box.scrollTop = Math.max(0, box.scrollTop - 40);
}
"""
# Clicks on citation cards (open in the viewer) and on "copy citation" (to the clipboard, in
# the style chosen in the settings), for every answer of the conversation.
PAGE_JS = """
() => {
  document.addEventListener('click', (ev) => {
    const copy = ev.target.closest('.qa-copy');
    if (copy) {
      ev.preventDefault(); ev.stopPropagation();
      const picked = document.querySelector('#qa-cite-style input:checked');
      const text = copy.dataset[picked ? picked.value : 'plain'];
      navigator.clipboard.writeText(text).then(() => { copy.textContent = 'copied'; setTimeout(() => { copy.textContent = 'copy citation'; }, 1500); });
      return;
    }
    const card = ev.target.closest('.qa-card[data-open]');
    if (card) {
      const box = document.querySelector('#qa-open textarea');
      box.value = JSON.stringify({...JSON.parse(card.dataset.open), at: Date.now()});
      box.dispatchEvent(new Event('input', {bubbles: true}));
    }
  }, true);
}
"""


# ---------------------------------------------------------------------------------------
# Rendering


def _card(c, meta: dict, question_lang: str) -> str:
    """One citation: head (source, place, span, match), the passage with its evidence
    marked, "copy citation". A click on the card opens it in the document viewer."""
    where = html.escape(place(c))
    note = " · note" if c.kind == "note" else ""
    head = " · ".join(x for x in (html.escape(c.title), html.escape(meta.get("publisher", "")), c.language.upper(), where) if x)
    other = f' <span class="qa-xling">{c.language.upper()} source</span>' if c.language != question_lang else ""
    before, evidence, after = c.split_evidence()
    body = html.escape(before) + f'<mark class="qa-evidence">{html.escape(evidence)}</mark>' + html.escape(after)
    target = html.escape(json.dumps({"doc_id": c.doc_id, "spans": c.spans, "evidence": [c.evidence.start, c.evidence.end]}))
    copies = " ".join(f'data-{style}="{html.escape(citation_text(c, meta, style))}"' for style in STYLES)
    return (
        f'<div class="qa-card" data-rank="{c.rank}" data-open="{target}" title="Show in its document">'
        f'<div class="qa-head"><span class="qa-num">[{c.rank}]</span> {head}{note}{other} · chars {c.start}–{c.end} · '
        f'<span class="qa-score" title="ranking score relative to the first citation (1.00)">match {c.score:.2f}</span>'
        f' <button class="qa-copy" {copies}>copy citation</button></div>'
        f'<div class="qa-passage">{body}</div></div>'
    )


def render_answer(answer, library: Library) -> str:
    documents = library.documents()
    lang = answer.language

    def card(c):  # type: ignore[no-untyped-def]
        return _card(c, documents.get(c.doc_id, {}), lang)

    if answer.abstained:
        parts = [f'<p class="qa-summary qa-not-answered"><strong>Not answered. {html.escape(answer.not_answered())}</strong></p>']
        if answer.related:
            parts.append('<details class="qa-related"><summary>Related passages (not citations)</summary>')
            parts += [card(c) for c in answer.related]
            parts.append("</details>")
    else:
        parts = [f'<p class="qa-summary"><strong>{html.escape(answer.answer)}</strong></p>']
        parts += [card(c) for c in answer.citations]
    parts.append(f'<p class="qa-head">question in {lang.upper()} · {answer.timings_ms.get("total", 0):.0f} ms</p>')
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

    def respond(question, history, k, mode, lang, doc, session, question_lang):
        history = list(history or [])
        try:
            answer = library.ask(
                question,
                k=int(k),
                mode=mode,
                lang=None if lang == "any" else lang,
                doc=None if doc == "any" else doc,
                question_lang=None if question_lang == "auto" else question_lang,
            )
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
        session = [*(session or []), {"markdown": answer_markdown(answer, library.documents()), "record": answer.to_dict()}]
        md_path, json_path = export_files(session)
        return (
            history,
            "",
            cites,
            gr.update(choices=choices, value=None),
            f"question in {answer.language.upper()} · {answer.timings_ms.get('total', 0):.0f} ms",
            session,
            gr.update(value=md_path, interactive=True),
            gr.update(value=json_path, interactive=True),
        )

    def export_files(session) -> tuple[str, str]:
        """The conversation as Markdown and as JSON lines (the `qa ask --json` records), in
        one folder per session; the previous turn's files are replaced (Gradio serves
        copies of them)."""
        folder = session[0].setdefault("folder", tempfile.mkdtemp(prefix="qa-session-"))
        for old in os.listdir(folder):
            os.unlink(os.path.join(folder, old))
        stem = os.path.join(folder, f"qa-session-{len(session)}")
        md_path, json_path = stem + ".md", stem + ".jsonl"
        with open(md_path, "w", encoding="utf-8") as fh:
            fh.write(session_markdown(turn["markdown"] for turn in session))
        with open(json_path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(turn["record"], ensure_ascii=False) + "\n" for turn in session)
        return md_path, json_path

    def show_citation(choice, cites):
        if choice is None or not cites:
            return '<div id="qa-viewer">Ask a question, then click a citation to see it in its document.</div>'
        return show_target(cites[int(choice)])

    def open_clicked(payload: str):
        try:
            return show_target(json.loads(payload))
        except (ValueError, TypeError, KeyError):
            return show_citation(None, [])

    def show_target(c: dict) -> str:
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
        if not doc_id:
            return "Nothing removed."
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

    def after_change(message, changed: bool = True):
        if not changed:  # the confirmation was declined: keep the choice made
            return message, gr.update(), gr.update(), gr.update(), gr.update()
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
        session = gr.State([])
        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="Answers", height=560, sanitize_html=False, elem_id="qa-chat", autoscroll=False)
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
                        question_lang = gr.Radio(["auto", "fr", "en"], value="auto", label="Language of the question (auto: detected)")
                        gr.Radio(list(STYLES), value="plain", label="Copy citation as", elem_id="qa-cite-style")  # read by PAGE_JS
                    with gr.Row():
                        export_md = gr.DownloadButton("Export Markdown", interactive=False, elem_id="qa-export-md", size="sm")
                        export_json = gr.DownloadButton("Export JSON", interactive=False, elem_id="qa-export-json", size="sm")
                    pick = gr.Dropdown([], label="Show a citation in its document (or click its card)", elem_id="qa-pick")
                    viewer = gr.HTML(show_citation(None, []), elem_id="qa-viewer-box")
                    opened = gr.Textbox(elem_id="qa-open", show_label=False, container=False)
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
                    sorted(library.documents()),
                    value=None,
                    label="Remove a document (its file is kept)",
                    interactive=edits,
                    elem_id="qa-remove-pick",
                )
                remove_btn = gr.Button("Remove", interactive=edits, elem_id="qa-remove")
            with gr.Row():
                to_restore = gr.Dropdown(
                    removed_choices(), label="Restore a removed document", interactive=edits, elem_id="qa-restore-pick"
                )
                restore_btn = gr.Button("Restore", interactive=edits, elem_id="qa-restore")
            status = gr.Markdown("", elem_id="qa-doc-status")

        inputs = [question, chat, k, mode, lang, doc, session, question_lang]
        outputs = [chat, question, cites_state, pick, timing, session, export_md, export_json]
        for trigger in (send.click, question.submit):
            trigger(respond, inputs, outputs, api_visibility="private").then(None, js=ANSWER_FIRST_JS)
        pick.change(show_citation, [pick, cites_state], viewer, api_visibility="private").then(None, js=SCROLL_JS)
        opened.change(open_clicked, opened, viewer, api_visibility="private").then(None, js=SCROLL_JS)
        changed = [status, table, doc, to_remove, to_restore]
        upload_box.upload(upload, upload_box, [status, table, doc, to_remove], api_name="upload")
        remove_btn.click(
            lambda d: after_change(remove_document(d), changed=bool(d)),  # no document: the confirmation was declined
            to_remove,
            changed,
            api_visibility="private",
            js="(d) => (d && confirm(`Remove ${d} from the index? Its file moves to corpus/.removed/: you can restore it below.`)) ? d : null",
        )
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
        js=PAGE_JS,
        quiet=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
