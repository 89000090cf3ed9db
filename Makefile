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

# `env --default-signal` undoes an inherited "ignore SIGINT/SIGTERM" (make run in the
# background, nohup), so Ctrl-C and SIGTERM always reach dagster and stop it cleanly.
dev: $(STAMP)
	exec env --default-signal=INT,TERM $(VENV)/bin/labmesh dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check labmesh_dagster labmesh_dagster_tests
	$(VENV)/bin/ruff format --check labmesh_dagster labmesh_dagster_tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .labmesh
