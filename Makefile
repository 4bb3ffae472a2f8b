# Each target builds or refreshes its own virtualenv with nothing but python3 (and, for the
# other supported Pythons, python3.12 and python3.13).
PYTHON ?= python3
VENV_TEST := .venv
VENV_DEMO := .venv-demo
VENV_BENCH := .venv-bench
VENV_DOCS := .venv-docs
# The other supported Pythons: `make test-3.12` runs the suite in .venv-3.12, and so on.
OTHER_PYTHONS := 3.12 3.13
# The oldest pytest-asyncio the pytest plugin supports (the newest is in .venv).
OLDEST_PYTEST_ASYNCIO := 0.23
VENV_OLDEST_PYTEST_ASYNCIO := .venv-pytest-asyncio-$(OLDEST_PYTEST_ASYNCIO)
PYENV_ROOT ?= $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)

# The interpreter for Python $(1), such as 3.12: $(PYTHON312) when given (make
# PYTHON312=/path/to/python3.12), else the newest pyenv build of $(1) under $(PYENV_ROOT),
# else python$(1) on PATH; empty when there is none.
find-python = $(or $(PYTHON$(subst .,,$(1))),$(shell \
	ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null \
	| grep -E '/versions/$(subst .,\.,$(1))\.[0-9]+/bin/' | sort -V | tail -n 1),$(shell \
	command -v python$(1) 2>/dev/null))

.PHONY: test test-all test-pythons $(OTHER_PYTHONS:%=test-%) test-asyncio-auto \
	test-oldest-pytest-asyncio \
	demo bench efficacy docs lint typecheck clean

$(VENV_TEST)/.stamp: pyproject.toml
	@echo "make: installing stoic and its test tools (pytest, hypothesis, trio, httpx, aiohttp," \
		"mypy, ruff, ...) into $(VENV_TEST); a minute or so, once"
	$(PYTHON) -m venv $(VENV_TEST)
	$(VENV_TEST)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_TEST)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

# .venv-3.12/.stamp, .venv-3.13/.stamp: the test virtualenv of that Python.
$(OTHER_PYTHONS:%=.venv-%/.stamp): .venv-%/.stamp: pyproject.toml
	@python="$(call find-python,$*)"; \
	if ! "$$python" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$*'" 2>/dev/null; then \
		echo "make: no working Python $* found (got '$$python'): looked for PYTHON$(subst .,,$*), for" \
			"$(PYENV_ROOT)/versions/$*.*/bin/python$* and for python$* on PATH;" \
			"install it (pyenv install $*) or pass PYTHON$(subst .,,$*)=/path/to/python$*" >&2; \
		exit 1; \
	fi; \
	echo "$$python -m venv .venv-$*"; \
	"$$python" -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV_OLDEST_PYTEST_ASYNCIO)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV_OLDEST_PYTEST_ASYNCIO)
	$(VENV_OLDEST_PYTEST_ASYNCIO)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_OLDEST_PYTEST_ASYNCIO)/bin/python -m pip install --quiet -e '.[test]' \
		'pytest-asyncio==$(OLDEST_PYTEST_ASYNCIO).*'
	touch $@

$(VENV_DEMO)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV_DEMO)
	$(VENV_DEMO)/bin/python -m pip install --quiet -e '.[httpx]'
	touch $@

$(VENV_DOCS)/.stamp: pyproject.toml docs/requirements.txt
	@echo "make: installing the docs tools (mkdocs, Material, mkdocstrings) into $(VENV_DOCS)"
	$(PYTHON) -m venv $(VENV_DOCS)
	$(VENV_DOCS)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_DOCS)/bin/python -m pip install --quiet -e '.[httpx,aiohttp]' -r docs/requirements.txt
	touch $@

$(VENV_BENCH)/.stamp: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_BENCH)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $@

## make test: the whole test suite on python3 (virtual time; about a minute)
test: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m pytest

## make test-3.12, make test-3.13: the whole suite on that Python, in .venv-3.12 or .venv-3.13
$(OTHER_PYTHONS:%=test-%): test-%: .venv-%/.stamp
	.venv-$*/bin/python -m pytest

## make test-pythons: the suite on every other supported Python (3.12 and 3.13)
test-pythons: $(OTHER_PYTHONS:%=test-%)

## make test-asyncio-auto: the suite under pytest-asyncio's auto mode, where pytest-asyncio runs
## every async test on its own loop and stoic's plugin switches that loop to virtual time
test-asyncio-auto: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m pytest -o asyncio_mode=auto

## make test-oldest-pytest-asyncio: the plugin's tests with the oldest supported pytest-asyncio
## (0.23; only those: 0.23 leaks event loops into tests that call asyncio.run)
test-oldest-pytest-asyncio: $(VENV_OLDEST_PYTEST_ASYNCIO)/.stamp
	$(VENV_OLDEST_PYTEST_ASYNCIO)/bin/python -m pytest tests/testing/test_pytest_plugin.py

## make test-all: what CI runs: every Python, both pytest-asyncio modes and its oldest
## version, ruff and mypy
test-all: test test-pythons test-asyncio-auto test-oldest-pytest-asyncio lint typecheck docs

## make demo: every pattern against a simulated flaky service (examples/ included)
demo: $(VENV_DEMO)/.stamp
	$(VENV_DEMO)/bin/python -m stoic.demo
	@for example in examples/*.py; do \
		echo; echo "=== $$example"; \
		$(VENV_DEMO)/bin/python $$example || exit 1; \
	done

## make efficacy: what the policies do to a system (a fleet and a server, on virtual time)
efficacy: $(VENV_BENCH)/.stamp
	$(VENV_BENCH)/bin/python benchmarks/efficacy.py

## make docs: the docs site into site/, strictly (a broken link or reference fails the build)
docs: $(VENV_DOCS)/.stamp
	NO_MKDOCS_2_WARNING=1 $(VENV_DOCS)/bin/python -m mkdocs build --strict --site-dir site

## make bench: overhead versus the peers; writes benchmarks/RESULTS.md
bench: $(VENV_BENCH)/.stamp
	$(VENV_BENCH)/bin/python benchmarks/run.py

lint: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m ruff check .
	$(VENV_TEST)/bin/python -m ruff format --check src tests examples benchmarks

typecheck: $(VENV_TEST)/.stamp
	$(VENV_TEST)/bin/python -m mypy --strict src
	# The public API's types: decorators keep signatures, misuse is an error.
	$(VENV_TEST)/bin/python -m mypy --strict --warn-unused-ignores tests/typing

clean:
	rm -rf $(VENV_TEST) $(OTHER_PYTHONS:%=.venv-%) $(VENV_OLDEST_PYTEST_ASYNCIO) $(VENV_DEMO) \
		$(VENV_BENCH) $(VENV_DOCS) site .mypy_cache .ruff_cache .hypothesis
