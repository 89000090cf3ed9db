# Two commands on a fresh machine: `make dev` runs the platform, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
LINTED := labmesh_dagster labmesh_dagster_tests benchmarks scripts

.PHONY: dev test test-quick lint clean

$(STAMP): pyproject.toml setup.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# `labmesh dev` execs dagster with SIGINT/SIGTERM at their defaults, so Ctrl-C and SIGTERM
# stop it cleanly even when make itself was started with them ignored (background, nohup).
dev: $(STAMP)
	exec $(VENV)/bin/labmesh dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The quick loop while working: everything but the tests marked slow (real servers, whole flows repeated).
test-quick: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .labmesh
