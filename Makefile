# make run  : set up from nothing, build/update the index of corpus/, start the chat UI (http://127.0.0.1:7860)
# make test : set up from nothing (with test extras) and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run chat test chromium index install install-dev clean eval-spf eval-seed eval-check eval-check-edge

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

index: $(VENV)/.installed
	$(BIN)/qa index

run: index
	$(BIN)/python app.py

chat: index
	$(BIN)/qa chat

# The browser tests drive Debian's Chromium: installed here as root, else one line says how.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test needs Debian's chromium for the browser tests: run 'sudo apt-get install -y chromium', then make test again" >&2; exit 1; \
	  fi; }

test: $(VENV)/.installed-dev chromium
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) index/CURRENT index/versions index/.tmp-* *.egg-info

# The service-public.fr benchmark (105 questions over 105 sheets): build its own index and score it.
# Evaluation indexes share one embedding cache: a text is embedded once for every backend.
EVAL_CACHE := QA_EMBEDDING_CACHE=$(CURDIR)/build/embeddings

SPF_INDEX := $(EVAL_CACHE) $(BIN)/qa index --corpus eval/spf/corpus --index eval/spf/index --quiet

eval-spf: $(VENV)/.installed
	$(SPF_INDEX)
	$(BIN)/qa eval eval/spf/questions.jsonl --index eval/spf/index -k 10

# Quality floors at the figures reached (see eval/README.md): CI fails if retrieval regresses.
# Seed hit@5: 0.966 on the machine of 2026-12-07 morning, 0.957 (one question) on a fresh
# build of the same commit that evening; the floor is the issue's target, 0.95.
SEED_FLOORS := hit@1=0.81 hit@5=0.95 mrr@10=0.87 evidence@1=0.71 doc@5=0.99 false_abstention=0.03
SPF_FLOORS  := hit@1=0.80 hit@5=0.94 mrr@10=0.86 doc@1=0.95 false_abstention=0.01
PARA_FLOORS := hit@1=0.55 hit@5=0.88 mrr@10=0.69 doc@1=0.96 false_abstention=0.03

eval-check: $(VENV)/.installed
	$(EVAL_CACHE) $(BIN)/qa index --quiet
	$(BIN)/qa eval eval/seed.jsonl --misses 0 --fail-under $(SEED_FLOORS)
	$(SPF_INDEX)
	$(BIN)/qa eval eval/spf/questions.jsonl --index eval/spf/index -k 10 --misses 0 --fail-under $(SPF_FLOORS)
	$(BIN)/qa eval eval/spf/paragraphs.jsonl --index eval/spf/index -k 10 --misses 0 --fail-under $(PARA_FLOORS)

# The Qdrant Edge backend must stay within 0.02 of the default (FAISS) figures on hit@5 and
# MRR@10, on both sets: floors at the default's figures minus 0.02 (eval/README.md).
EDGE_SEED_FLOORS := hit@5=0.946 mrr@10=0.857
EDGE_SPF_FLOORS  := hit@5=0.923 mrr@10=0.847

eval-check-edge: $(VENV)/.installed-dev
	$(EVAL_CACHE) $(BIN)/qa index --index build/index-edge --backend qdrant-edge --quiet
	$(BIN)/qa eval eval/seed.jsonl --index build/index-edge --misses 0 --fail-under $(EDGE_SEED_FLOORS)
	$(EVAL_CACHE) $(BIN)/qa index --corpus eval/spf/corpus --index build/spf-index-edge --backend qdrant-edge --quiet
	$(BIN)/qa eval eval/spf/questions.jsonl --index build/spf-index-edge -k 10 --misses 0 --fail-under $(EDGE_SPF_FLOORS)

eval-seed: $(VENV)/.installed
	$(BIN)/qa index --quiet
	$(BIN)/qa eval eval/seed.jsonl --compare
