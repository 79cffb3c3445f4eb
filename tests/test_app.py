"""The real app on a free port, driven through gradio_client and a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa.chunking import clean_document
from qa.corpus import load_corpus

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _start(tmp, built_index, *flags):
    from qa.bench_load import start_app

    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    shutil.copytree(built_index, index)
    proc, url = start_app("--corpus", str(corpus), "--index", str(index), *flags, output=subprocess.PIPE)
    return proc, {"url": url, "corpus": corpus, "index": index}


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index):
    proc, info = _start(tmp_path_factory.mktemp("app"), built_index, "--max-upload-mb", "1", "--allow-edits")
    yield info
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def default_server(tmp_path_factory, built_index):
    """Started as a newcomer would: no QA_AUTH, no --allow-edits."""
    proc, info = _start(tmp_path_factory.mktemp("app-default"), built_index)
    yield info
    proc.terminate()
    proc.wait(timeout=20)


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _check_offsets(answer, corpus):
    docs = {d.doc_id: d for d in load_corpus(corpus, warn=lambda m: None)}
    for c in answer["citations"]:
        cleaned = clean_document(docs[c["doc_id"]])
        assert cleaned.rebuild(c["spans"]) == c["text"]
        assert c["spans"][0][0] == c["start"] and c["start"] <= c["evidence"]["start"] < c["evidence"]["end"] <= c["end"]


def test_french_english_and_unanswerable_through_the_api(server):
    client = _client(server["url"])
    fr = client.predict("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?", 5, "hybrid", "", "", api_name="/ask")
    assert not fr["abstained"] and fr["citations"][0]["doc_id"] == "ijd-elargissement-balkans-securite"
    _check_offsets(fr, server["corpus"])
    en = client.predict("When was NATO's military liaison office in Belgrade established?", 5, "hybrid", "", "", api_name="/ask")
    assert not en["abstained"] and any("décembre 2006" in c["text"] for c in en["citations"][:3])
    _check_offsets(en, server["corpus"])
    none = client.predict("What is the capital of Australia?", 5, "hybrid", "", "", api_name="/ask")
    assert none["abstained"] and none["citations"] == [] and none["related"] and "Australia appears nowhere" in none["reason"]
    assert set(fr) >= {"question", "language", "abstained", "answer", "citations", "timings_ms"}


QUESTIONS = [
    "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?",
    "When was NATO's military liaison office in Belgrade established?",
    "Combien de voix pour la résolution du Parlement européen ?",
    "What is the capital of Australia?",
    "Quels sont les piliers de la stratégie française pour les Balkans ?",
] * 5


def _key(answer):
    return (
        answer["abstained"],
        [(c["doc_id"], c["start"], c["end"], c["evidence"]["start"]) for c in answer["citations"] + answer["related"]],
    )


def test_eight_concurrent_clients_get_the_sequential_answers(server):
    client = _client(server["url"])
    expected = {q: _key(client.predict(q, 5, "hybrid", "", "", api_name="/ask")) for q in set(QUESTIONS)}

    def worker(offset):
        c = _client(server["url"])
        got = []
        for i in range(25):
            q = QUESTIONS[(i + offset) % len(QUESTIONS)]
            got.append((q, _key(c.predict(q, 5, "hybrid", "", "", api_name="/ask"))))
        return got

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    assert sum(len(r) for r in results) == 200
    for got in results:
        for q, key in got:
            assert key == expected[q], q


def _current(index: Path) -> str:
    return (index / "CURRENT").read_text()


def test_upload_then_ask_and_rejected_uploads_change_nothing(server, tmp_path):
    from gradio_client import handle_file

    client = _client(server["url"])
    before = _current(server["index"])
    bad = tmp_path / "tableur.xlsx"
    bad.write_bytes(b"PK\x03\x04")
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Invalid file type"):  # Gradio refuses it before our code
        client.predict(handle_file(str(bad)), api_name="/upload")
    big = tmp_path / "gros.txt"
    big.write_text("mot " * 400_000, encoding="utf-8")  # 1.6 MB, over the 1 MB limit of this server
    status = client.predict(handle_file(str(big)), api_name="/upload")[0]
    assert "Refused" in status and "upload limit" in status
    assert _current(server["index"]) == before and not (server["corpus"] / "gros.txt").exists()

    new = tmp_path / "note-lyon.md"
    new.write_text("# Note\n\nLe centre de formation cyber de Lyon a ouvert en mars 2026 avec 40 stagiaires.\n", encoding="utf-8")
    status = client.predict(handle_file(str(new)), api_name="/upload")[0]
    assert status.startswith("Added note-lyon.md")
    assert _current(server["index"]) != before
    answer = client.predict("Combien de stagiaires au centre de formation cyber de Lyon ?", 3, "hybrid", "", "", api_name="/ask")
    assert answer["citations"][0]["doc_id"] == "note-lyon"
    status = client.predict("note-lyon", api_name="/remove")
    assert status.startswith("Removed note-lyon")
    assert client.predict("nope", api_name="/remove").startswith("Refused: unknown document")


def _browser(p):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: apt-get install -y chromium (make test installs it)"
    return p.chromium.launch(
        executable_path=chromium,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    )


def test_browser_shows_highlighted_citation_and_document_viewer(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server["url"])
        page.locator("#qa-question textarea").fill("Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?")
        page.locator("#qa-ask").click()
        evidence = page.locator(".qa-card mark.qa-evidence").first
        expect(evidence).to_be_visible(timeout=30_000)
        assert "Bayraktar" in evidence.inner_text()
        page.locator("#qa-pick input").click()
        page.get_by_role("option").first.click()
        marked = page.locator("#qa-viewer mark.qa-span").first
        expect(marked).to_be_visible(timeout=15_000)
        assert "Bayraktar" in page.locator("#qa-viewer").inner_text()
        assert page.locator("#qa-viewer mark.qa-span strong").count() >= 1
        page.locator("#qa-question textarea").fill("What is the capital of Australia?")
        page.locator("#qa-ask").click()
        refused = page.locator(".qa-not-answered").last
        expect(refused).to_be_visible(timeout=30_000)
        assert "Australia appears nowhere in the documents" in refused.inner_text()  # says why it does not answer
        browser.close()


def test_answers_in_flight_during_an_upload_see_the_old_or_the_new_index(server, tmp_path):
    from gradio_client import handle_file

    question = "Combien de stagiaires au centre de formation cyber de Marseille ?"
    client = _client(server["url"])
    old = _key(client.predict(question, 5, "hybrid", "", "", api_name="/ask"))
    new_doc = tmp_path / "note-marseille.md"
    new_doc.write_text("# Note\n\nLe centre de formation cyber de Marseille a ouvert en avril 2026 avec 55 stagiaires.\n", encoding="utf-8")

    def reader(_):
        c = _client(server["url"])
        return [_key(c.predict(question, 5, "hybrid", "", "", api_name="/ask")) for _ in range(12)]

    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(reader, i) for i in range(4)]
        time.sleep(0.5)
        status = _client(server["url"]).predict(handle_file(str(new_doc)), api_name="/upload")[0]
        seen = [key for f in futures for key in f.result()]
    assert status.startswith("Added note-marseille.md")
    new = _key(client.predict(question, 5, "hybrid", "", "", api_name="/ask"))
    assert new != old and new[1][0][0] == "note-marseille"
    assert len(seen) == 48 and all(key in (old, new) for key in seen)
    assert client.predict("note-marseille", api_name="/remove").startswith("Removed")


def test_without_a_login_or_allow_edits_nobody_can_remove_upload_or_restore(default_server, tmp_path):
    from qa.index import resolve_version

    corpus, index = default_server["corpus"], default_server["index"]
    files = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*"))
    live = resolve_version(index)
    client = _client(default_server["url"])
    for doc_id in ("otan-relations-serbie", "ijd-elargissement-balkans-securite"):
        message = client.predict(doc_id, api_name="/remove")
        assert message.startswith("Refused: Document changes are off") and "--allow-edits" in message
    assert client.predict("otan-relations-serbie", api_name="/restore").startswith("Refused: Document changes are off")
    from gradio_client import handle_file

    doc = tmp_path / "intrus.md"
    doc.write_text("# Intrus\n\nUn texte que personne n'a autorisé.\n", encoding="utf-8")
    assert client.predict(handle_file(str(doc)), api_name="/upload")[0].startswith("Refused: Document changes are off")
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*")) == files  # nothing moved, nothing added
    assert resolve_version(index) == live  # no new index version
    page = urllib.request.urlopen(default_server["url"] + "config", timeout=10).read().decode()
    assert "Document changes are off" in page  # the Documents tab says why its buttons are off


def test_browser_removes_a_document_then_restores_it(server):
    from playwright.sync_api import expect, sync_playwright

    from qa.index import Index

    corpus, doc_id = server["corpus"], "otan-relations-serbie"
    original = (corpus / f"{doc_id}.txt").read_bytes()
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server["url"])
        page.get_by_role("tab", name="Documents").click()
        page.locator("#qa-remove-pick input").click()
        page.get_by_role("option", name=doc_id, exact=True).click()
        asked = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.locator("#qa-remove").click()  # asks first: dismissed, nothing happens
        expect(page.locator("#qa-doc-status")).to_contain_text("Nothing removed", timeout=30_000)
        assert asked and doc_id in asked[0] and "restore" in asked[0]
        assert (corpus / f"{doc_id}.txt").exists()
        page.once("dialog", lambda d: d.accept())
        page.locator("#qa-remove").click()
        expect(page.locator("#qa-doc-status")).to_contain_text(f"Removed {doc_id}", timeout=60_000)
        assert not (corpus / f"{doc_id}.txt").exists() and doc_id not in Index.load(server["index"]).manifest["documents"]
        [kept] = list((corpus / ".removed").glob(f"*/{doc_id}.txt"))
        assert kept.read_bytes() == original
        page.locator("#qa-restore-pick input").click()
        page.get_by_role("option", name=doc_id).first.click()
        page.locator("#qa-restore").click()
        expect(page.locator("#qa-doc-status")).to_contain_text("Restored", timeout=60_000)
        browser.close()
    assert (corpus / f"{doc_id}.txt").read_bytes() == original
    assert doc_id in Index.load(server["index"]).manifest["documents"]


def test_an_upload_that_lands_during_a_cli_build_is_kept(server, tmp_path):
    """Another process's build holds the index (paused before its switch); the UI's upload
    waits for it, then indexes on top of it: both documents are in the index."""
    import textwrap
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import handle_file

    from qa.index import Index

    corpus, index = server["corpus"], server["index"]
    (corpus / "par-la-cli.md").write_text("# CLI\n\nLe pont de Mostar a été reconstruit en 2004.\n", encoding="utf-8")
    release = tmp_path / "release"
    script = textwrap.dedent(
        """
        import pathlib, sys, time
        from qa.index import build_index

        def pause(version):
            print("paused", flush=True)
            while not pathlib.Path(sys.argv[3]).exists():
                time.sleep(0.05)

        build_index(sys.argv[1], sys.argv[2], progress=False, log=lambda m: None, before_switch=pause)
        """
    )
    cli = subprocess.Popen(
        [sys.executable, "-c", script, str(corpus), str(index), str(release)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert cli.stdout.readline().strip() == "paused"
        upload = tmp_path / "par-l-interface.md"
        upload.write_text("# UI\n\nLe lac d'Ohrid est partagé entre l'Albanie et la Macédoine du Nord.\n", encoding="utf-8")
        with ThreadPoolExecutor(1) as ex:
            pending = ex.submit(lambda: _client(server["url"]).predict(handle_file(str(upload)), api_name="/upload")[0])
            time.sleep(3)
            assert not pending.done()  # waiting for the CLI's build
            release.touch()
            status = pending.result(timeout=300)
    finally:
        release.touch()
        cli.wait(timeout=300)
    assert cli.returncode == 0 and status.startswith("Added par-l-interface.md")
    assert {"par-la-cli", "par-l-interface"} <= set(Index.load(index).manifest["documents"])
    answer = _client(server["url"]).predict("Qui partage le lac d'Ohrid ?", 5, "hybrid", "", "", api_name="/ask")
    assert answer["citations"][0]["doc_id"] == "par-l-interface"


ANSWERED = "Quel pays a acheté des drones Bayraktar à la Turquie en 2024 ?"
CROSS = "When was NATO's military liaison office in Belgrade established?"


@pytest.mark.parametrize("viewport", [(1400, 1000), (1280, 720)])
def test_browser_answer_first_then_one_click_from_a_card_to_its_source(server, viewport):

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.goto(server["url"])
        for turn, question in enumerate((ANSWERED, CROSS), start=1):
            page.locator("#qa-question textarea").fill(question)
            page.locator("#qa-ask").click()
            expect(page.locator("#qa-chat .qa-summary")).to_have_count(turn, timeout=60_000)
            page.wait_for_timeout(500)  # the scroll that follows the answer
            summary = page.locator("#qa-chat .qa-summary").last
            first_card = page.locator("#qa-chat .qa-card[data-rank='1']").last
            expect(summary).to_be_in_viewport()
            expect(first_card).to_be_in_viewport()
            assert first_card.get_attribute("data-rank") == "1"
        assert "question in EN" in page.locator("#qa-timing").inner_text()
        assert page.locator("#qa-chat .qa-xling").count() >= 1  # an English question answered from a French source
        card = page.locator("#qa-chat .qa-card[data-rank='2']").last
        target = json.loads(card.get_attribute("data-open"))
        card.locator(".qa-passage").click()
        expect(page.locator("#qa-viewer mark.qa-span").first).to_be_visible(timeout=15_000)
        raw = (server["corpus"] / f"{target['doc_id']}.txt").read_text(encoding="utf-8")
        marked = "".join(page.locator("#qa-viewer mark.qa-span").all_inner_texts())
        assert marked == "".join(raw[s:e] for s, e in target["spans"])
        if viewport == (1400, 1000):
            page.screenshot(path=str(ROOT / "docs" / "screenshot-viewer.png"), full_page=False)
        browser.close()


def test_browser_copy_citation_and_export_round_trip(server, tmp_path, capsys):
    from playwright.sync_api import expect, sync_playwright

    from qa.cleaning import apply_edits
    from qa.cli import main
    from qa.export import citation_text
    from qa.index import Index

    with sync_playwright() as p:
        browser = _browser(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(server["url"])
        page.locator("#qa-question textarea").fill(ANSWERED)
        page.locator("#qa-ask").click()
        expect(page.locator("#qa-chat .qa-summary")).to_have_count(1, timeout=60_000)
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=False)
        page.locator("#qa-chat .qa-card[data-rank='1'] .qa-copy").click()
        expect(page.locator("#qa-chat .qa-card[data-rank='1'] .qa-copy")).to_have_text("copied", timeout=5_000)
        clipboard = page.evaluate("navigator.clipboard.readText()")
        with page.expect_download() as download:
            page.locator("#qa-export-md").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        with page.expect_download() as download:
            page.locator("#qa-export-json").click()
        [record] = [json.loads(line) for line in Path(download.value.path()).read_text(encoding="utf-8").splitlines()]
        browser.close()
    from qa import Assistant

    assistant = Assistant(Index.load(server["index"]))
    first = assistant.ask(ANSWERED).citations[0]
    assert clipboard == citation_text(first, assistant.documents[first.doc_id], "plain")
    assert record["question"] == ANSWERED and record["citations"][0]["chunk_id"] == first.chunk_id  # the qa ask --json record
    assert first.evidence.text.split()[0] in clipboard and f"chars {first.evidence.start}–" in clipboard
    # the export's citations round-trip to the raw files
    import re

    docs = {d.doc_id: d for d in load_corpus(server["corpus"], warn=lambda m: None)}
    quotes = re.findall(r"^(\d+)\. > (.*)\n   — .*chars ([\d–, ]+) of (\S+)$", exported, flags=re.M)
    assert quotes and quotes[0][0] == "1"
    for _, quote, spans, doc_id in quotes:
        pieces = [tuple(int(x) for x in piece.split("–")) for piece in spans.split(", ")]
        cleaned = clean_document(docs[doc_id])
        assert " ".join("".join(apply_edits(cleaned.raw, cleaned.edits, a, b) for a, b in pieces).split()) == quote
    # and equal what `qa ask --format markdown` prints for the same question
    capsys.readouterr()
    assert main(["ask", "--index", str(server["index"]), ANSWERED, "--format", "markdown"]) == 0
    printed = capsys.readouterr().out
    assert exported == "# qa session\n\n" + printed.removesuffix("\n")
