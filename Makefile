# Two commands do all the set-up (see README):
#   make run   — virtualenv, install, database, knowledge, index, serve on 127.0.0.1:8000
#   make test  — virtualenv, install (with test extras), run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# torch comes from the local CPU build (torch==2.13.0) before anything can ask for a CUDA one.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,st]'

# Local quick start only: requests without a token act as an agent (see README, "Access and roles").
run: install
	$(BIN)/draftdesk db upgrade
	DRAFTDESK_ANONYMOUS_ROLE=agent $(BIN)/draftdesk serve

test: install-test
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/retrieval.py

eval: install
	$(BIN)/draftdesk eval run eval/data/dev.jsonl --out eval/reports/dev

clean:
	rm -rf var .pytest_cache
