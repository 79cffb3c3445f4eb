"""The real app on a free port, driven through gradio_client and a real browser."""

from __future__ import annotations

import shutil
import socket
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index):
    tmp = tmp_path_factory.mktemp("app")
    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    shutil.copytree(built_index, index)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--corpus", str(corpus), "--index", str(index), "--port", str(port), "--max-upload-mb", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read()) from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("app did not start")
    yield {"url": url, "corpus": corpus, "index": index}
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
    assert none["abstained"] and none["citations"] == [] and none["related"]
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


def test_browser_shows_highlighted_citation_and_document_viewer(server):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
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
        page.locator(".qa-card").first.scroll_into_view_if_needed()
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=False)
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
