# The few commands a newcomer needs. `make demo` and `make test` work on a fresh Debian machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench corpus fuzz clean

$(BIN)/intake: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## Run the bot on bundled example mail: a local folder in, a file outbox out, no servers.
demo: $(BIN)/intake
	$(BIN)/intake demo

## Install what the tests need (Python packages, Dovecot, Chromium) and run every test.
test: $(BIN)/intake
	scripts/install-test-deps
	$(BIN)/pytest

## Unit tests only: no servers started.
test-fast: $(BIN)/intake
	$(BIN)/pytest -m "not imap and not slow and not browser and not fuzz"

lint: $(BIN)/intake
	$(BIN)/ruff check intake parsers rules tests scripts benchmarks

## Figures: personal-data corpus recall, scan throughput, memory on hostile attachments.
corpus: $(BIN)/intake
	$(BIN)/python scripts/pd_corpus.py

## Speed and memory side by side (README "Performance"): intake against a raw IMAP fetch on the same Dovecot
## mailbox, history scaling (1k vs 100k tickets), memory against attachment size, then the older figures.
## A few minutes on 2 cores; N is the issue's 2,000 mails (`make bench BENCH_N=200` for a quick look).
BENCH_N ?= 2000
BENCH_REPEAT ?= 3
BENCH_SIZES ?= 1000,100000
bench: $(BIN)/intake
	scripts/install-test-deps
	# Byte-compiled as an installed package is (pip compiles on install): with PYTHONDONTWRITEBYTECODE set, an
	# editable install would compile ~70 modules from source at every start (0.1 s of each poll's start).
	$(BIN)/python -m compileall -q intake parsers rules >/dev/null
	$(BIN)/python benchmarks/bench_imap.py --n $(BENCH_N) --repeat $(BENCH_REPEAT)
	$(BIN)/python benchmarks/bench_history.py --sizes $(BENCH_SIZES)
	$(BIN)/python benchmarks/bench_attachment_rss.py
	$(BIN)/python benchmarks/bench_pd_scan.py
	$(BIN)/python benchmarks/hostile_rss.py
	$(BIN)/python benchmarks/bench_sandbox.py
	$(BIN)/python benchmarks/bench_poll.py
	$(BIN)/python benchmarks/bench_register.py
	$(BIN)/python benchmarks/bench_lifecycle.py
	$(BIN)/python benchmarks/bench_idle.py
	$(BIN)/python benchmarks/bench_checklists.py

## 10,000 mutated mails and forms through decide() and a local Maildir with the real poller (counts only).
FUZZ_N ?= 10000
FUZZ_SEED ?= 1
fuzz: $(BIN)/intake
	$(BIN)/python scripts/fuzz.py --n $(FUZZ_N) --seed $(FUZZ_SEED)

clean:
	rm -rf $(VENV) var .pytest_cache
