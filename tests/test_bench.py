"""A smoke run of the benchmark (the full run is `qa bench --sizes seed,10k,100k,1m`)."""

import json

import numpy as np
import pytest

from qa.bench import main

pytestmark = pytest.mark.slow


def test_bench_smoke_writes_table_plot_and_recall(tmp_path):
    out = tmp_path / "benchmarks.md"
    work = tmp_path / "work"
    assert (
        main(
            [
                "--sizes",
                "seed,2k",
                "--ann-threshold",
                "1000",
                "--queries",
                "10",
                "--work",
                str(work),
                "--out",
                str(out),
                "--backend-sizes",
                "2k",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "| seed | 187 | flat |" in text and "| 2k | 2,000 | hnsw" in text
    assert "Cold start of one `qa ask` process" in text and "Incremental add of one document" in text
    assert "recall@10 vs exact" in text and "bm25s against rank-bm25" in text
    assert "Backends side by side at 2k chunks" in text and "| qdrant-edge |" in text
    assert out.with_suffix(".png").stat().st_size > 10_000
    results = json.loads((work / "results.json").read_text())
    recall = results["sizes"]["2k"]["recall"]
    assert recall["512"]["recall@10"] >= recall["32"]["recall@10"]
    edge = results["sizes"]["2k"]["backends"]["qdrant-edge"]
    assert edge["recall"]["recall@10"] >= 0.9 and edge["query"]["hybrid"]["total"]["p50"] > 0


def test_hnsw_index_answers_with_filters(tmp_path):
    """Above the threshold the index is HNSW; filters and citations work the same."""
    from qa.answer import Assistant
    from qa.bench_workers import worker_build_synthetic
    from qa.index import Index

    info = worker_build_synthetic(1500, str(tmp_path / "idx"), ann_threshold=1000)
    assert info["dense"]["type"] == "hnsw"
    index = Index.load(tmp_path / "idx")
    assistant = Assistant(index)
    answer = assistant.ask("Qu'est-ce que la médiation familiale ?", k=5)
    ranked = answer.citations or answer.related
    assert ranked and all(
        c.text == index.chunks[int(np.flatnonzero(index.rows["faiss_id"] == int(c.chunk_id[:15], 16))[0])].text for c in ranked
    )
    doc = ranked[0].doc_id
    filtered = assistant.ask("médiation familiale", k=5, doc=doc, mode="dense")
    assert filtered.citations + filtered.related and all(c.doc_id == doc for c in filtered.citations + filtered.related)


def test_load_smoke_writes_its_section_and_keeps_the_rest(tmp_path, built_index, capsys):
    from pathlib import Path

    from qa.bench_load import kept_section

    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nsizes table\n", encoding="utf-8")
    corpus = Path(__file__).resolve().parent.parent / "corpus"
    args = ["--load", "--index", str(built_index), "--corpus", str(corpus), "--clients", "1,3", "--questions", "4", "--soak", "8"]
    assert main([*args, "--out", str(out)]) == 0
    results = json.loads(capsys.readouterr().out)
    for n in ("1", "3"):
        run = results["load"]["runs"][n]
        assert run["questions"] == 4 * int(n) and run["errors"] == 0 and run["different_from_sequential"] == 0
    assert results["soak"]["questions"] == 8 and results["soak"]["rss_after_mb"] > 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nsizes table") and "## Load and soak" in text and "| 3 | 12 | 0 | 0 |" in text
    assert kept_section(out).startswith("<!-- load") and main([*args, "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("## Load and soak") == 1  # replaced, not appended


def test_out_folder_gets_benchmarks_md_and_a_missing_folder_is_one_line_error(tmp_path, capsys):
    from qa.bench_load import report_path

    assert report_path(str(tmp_path)) == tmp_path / "benchmarks.md"
    assert report_path(str(tmp_path / "b.md")) == tmp_path / "b.md"
    missing = tmp_path / "nope" / "b.md"
    # checked before any index is built or any question asked
    assert main(["--sizes", "seed", "--work", str(tmp_path / "work"), "--out", str(missing)]) == 2
    assert main(["--load", "--out", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("does not exist; create it or pass another path" in line for line in err)
    assert not (tmp_path / "work").exists()
