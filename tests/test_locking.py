"""Writers of one index are serialised across processes; versions in use are never pruned."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from qa.errors import IndexBusyError
from qa.index import KEEP_VERSIONS, Index, build_index, resolve_version
from qa.locking import write_lock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def live(tmp_path, built_index, corpus_copy):
    """A copy of the session's index, up to date with a copy of the corpus."""
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    return corpus_copy, index


def _add(corpus: Path, name: str, sentence: str) -> None:
    (corpus / name).write_text(f"# {name}\n\n{sentence}\n", encoding="utf-8")


def _qa(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, **kw
    )


def test_a_second_qa_index_waits_for_a_paused_build_and_both_changes_are_kept(live, encoder):
    corpus, index = live
    paused, release = threading.Event(), threading.Event()

    def pause(version: Path) -> None:
        paused.set()
        assert release.wait(120)

    _add(corpus, "first.md", "Le premier document ajouté parle des abeilles de Podgorica.")
    result = {}
    writer = threading.Thread(
        target=lambda: result.update(
            report=build_index(corpus, index, encoder=encoder, progress=False, log=lambda m: None, before_switch=pause)
        )
    )
    writer.start()
    try:
        assert paused.wait(120), "the first build never reached its switch"
        _add(corpus, "second.md", "Le second document ajouté parle des tortues de Tirana.")
        second = _qa("index", "--corpus", str(corpus), "--index", str(index), "--quiet")
        line = second.stderr.readline()  # blocks until the second writer says it waits
        assert "is being updated by pid " + str(os.getpid()) in line and "waiting" in line
        assert second.poll() is None  # still waiting: the lock is held
    finally:
        release.set()
        writer.join(120)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert {"first", "second"} <= set(Index.load(index).manifest["documents"])
    assert result["report"].added == ["first"]


def test_a_writer_that_will_not_wait_fails_in_one_line_naming_the_holder(live):
    corpus, index = live
    with write_lock(index):
        proc = _qa("index", "--corpus", str(corpus), "--index", str(index), "--lock-timeout", "0")
        out, err = proc.communicate(timeout=120)
        with pytest.raises(IndexBusyError, match=f"updated by pid {os.getpid()}"):
            build_index(corpus, index, lock_timeout=0.2, progress=False, log=lambda m: None)
    assert proc.returncode == 1
    assert err.count("\n") == 1 and f"is being updated by pid {os.getpid()}" in err and "run this again" in err
    assert out == ""


def test_pruning_keeps_a_version_another_process_has_open(live, encoder):
    corpus, index = live
    first = resolve_version(index)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from qa.index import Index
                index = Index.load({str(index)!r})
                print(index.path.name, flush=True)
                input()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert reader.stdout.readline().strip() == first.name
        for n in range(KEEP_VERSIONS + 1):  # enough updates to push the first version out
            _add(corpus, f"extra{n}.md", f"Le document numéro {n} parle des ponts de Skopje.")
            build_index(corpus, index, encoder=encoder, progress=False, log=lambda m: None)
        versions = sorted(p.name for p in (index / "versions").iterdir())
        assert first.name in versions and len(versions) == KEEP_VERSIONS + 1  # kept: still open
        assert Index.load(first).chunks[0].text  # and readable
    finally:
        reader.communicate("\n", timeout=60)
    _add(corpus, "last.md", "Le dernier document parle des lacs d'Ohrid.")
    build_index(corpus, index, encoder=encoder, progress=False, log=lambda m: None)
    versions = sorted(p.name for p in (index / "versions").iterdir())
    assert first.name not in versions and len(versions) == KEEP_VERSIONS  # closed: pruned
