"""Convert the service-public.fr benchmark (SQuAD layout) into a qa corpus and eval set.

    python eval/spf/convert.py [../shared/bench/spf/spf_qr_test.json]

Writes eval/spf/corpus/<sheet>.txt (the sheet text as given, so answer offsets are raw
offsets), eval/spf/corpus/metadata.json and eval/spf/questions.jsonl.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent.parent.parent / "shared" / "bench" / "spf" / "spf_qr_test.json"


def convert(source: Path, out: Path = HERE) -> int:
    data = json.loads(source.read_text(encoding="utf-8"))["data"]
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    metadata = {
        "about": "service-public.fr information sheets (Licence Ouverte / Etalab), from the piaf-ml spf_qr_test.json benchmark",
        "documents": {},
    }
    lines = []
    for entry in data:
        sheet = entry["title"]
        paragraph = entry["paragraphs"][0]
        (corpus / f"{sheet}.txt").write_text(paragraph["context"], encoding="utf-8")
        metadata["documents"][sheet] = {"title": f"Fiche {sheet}", "publisher": "service-public.fr", "language": "fr"}
        for i, qa in enumerate(paragraph["qas"]):
            answer = qa["answers"][0]
            assert paragraph["context"][answer["answer_start"] :].startswith(answer["text"])
            lines.append(
                {
                    "id": f"{sheet}" + (f"-{i}" if i else ""),
                    "question": qa["question"],
                    "expected": [{"doc_id": sheet, "quote": answer["text"]}],
                    "tags": ["fr→fr"],
                }
            )
    (corpus / "metadata.json").write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "questions.jsonl", "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(lines)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    print(f"{convert(src)} questions written to {HERE}")
