# Two commands on a fresh machine: `make dev` runs the platform, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test lint clean

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

lint: $(STAMP)
	$(VENV)/bin/ruff check labmesh_dagster labmesh_dagster_tests
	$(VENV)/bin/ruff format --check labmesh_dagster labmesh_dagster_tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .labmesh
