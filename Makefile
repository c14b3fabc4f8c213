# whylabel: `make run` starts the dashboard, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PORT ?= 8501

.PHONY: setup run dev test typecheck bench demo lint format train-mnist clean

setup: $(STAMP)

# Re-install only when the project's requirements change; torch is pinned first so pip never pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# For development: the page reloads when a source file changes (the file watcher `make run` leaves off).
dev: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.fileWatcherType auto --server.runOnSave true

test: setup typecheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# mypy on `whylabel.*` as users import it: the repository root is the package, so a link names it.
typecheck: setup
	mkdir -p .typecheck && ln -sfn .. .typecheck/whylabel
	cd .typecheck && ../$(VENV)/bin/mypy --config-file ../pyproject.toml -p whylabel

# The notebook path against the dashboard path, with a convergence sweep of LIME's and SHAP's budgets
# (about 12 minutes on 2 cores), the audit's methods and costs (about 4 minutes), then the page in Chromium.
# Writes bench/results/.
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.audit
	@if command -v chromium >/dev/null; then $(PY) -m bench.browser; \
	else echo "chromium not installed: skipping the in-browser timing (bench.browser)"; fi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The audit's teaching demo: a digit model that learned a mark on half the 7s, audited (writes demo-audit/).
demo: setup
	$(PY) -m scripts.demo_audit

train-mnist: setup
	$(PY) -m scripts.train_mnist

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .typecheck
