# SAM Lab: `make run` starts the dashboard, `make test` runs every check.
# Both create the virtual environment (.venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8501
ARGS   ?=

.PHONY: run test test-fast lint browser bench clean requirements

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m ui.serve --server.address $(HOST) --server.port $(PORT) --server.headless true $(ARGS)

browser:
	bash scripts/ensure_chromium.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) browser lint
	PY=$(PY) bash scripts/test.sh

test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not e2e and not slow"

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

requirements:  # after editing the dependency layers in pyproject.toml
	$(PYTHON) scripts/requirements.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
