# Each target builds or refreshes its own virtualenv with nothing but python3.
PYTHON ?= python3
VENV_TEST := .venv
VENV_DEMO := .venv-demo
VENV_BENCH := .venv-bench

.PHONY: test demo bench lint typecheck clean

$(VENV_TEST)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV_TEST)
	$(VENV_TEST)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_TEST)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV_DEMO)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV_DEMO)
	$(VENV_DEMO)/bin/python -m pip install --quiet -e .
	touch $@

$(VENV_BENCH)/.stamp: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_BENCH)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $@

## make test: the whole test suite (virtual time; well under a minute)
test: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m pytest

## make demo: every pattern against a simulated flaky service (examples/ included)
demo: $(VENV_DEMO)/.stamp
	$(VENV_DEMO)/bin/python -m stoic.demo
	@for example in examples/*.py; do \
		echo; echo "=== $$example"; \
		$(VENV_DEMO)/bin/python $$example || exit 1; \
	done

## make bench: overhead versus the peers; writes benchmarks/RESULTS.md
bench: $(VENV_BENCH)/.stamp
	$(VENV_BENCH)/bin/python benchmarks/run.py

lint: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m ruff check .
	$(VENV_TEST)/bin/python -m ruff format --check src tests examples benchmarks

typecheck: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m mypy --strict src

clean:
	rm -rf $(VENV_TEST) $(VENV_DEMO) $(VENV_BENCH) .mypy_cache .ruff_cache .hypothesis
