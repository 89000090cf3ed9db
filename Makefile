# Two commands on a fresh machine: `make dev` runs the platform, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
# What is installed: the platform's own packages (`make dev`), or those plus the test extra (tests, lint).
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test
LINTED := labmesh_dagster labmesh_dagster_tests benchmarks scripts

# Each phase says what it does and the seconds since make started: the first install takes a while.
STARTED := $(shell date +%s)
phase = printf 'labmesh [%4ss] %s\n' "$$(( $$(date +%s) - $(STARTED) ))"
# $(,) writes a comma inside the arguments of $(call ...).
, := ,

.PHONY: dev test test-quick tools lint infra-check clean

# $(1) says what is installed, $(2) is the pip requirement. pip lists each package as it comes, with a
# bar for each download and one over the installs when it writes to a terminal.
define install
	@test -x $(VENV)/bin/python || { $(phase) 'creating $(VENV) with $(shell $(PYTHON) --version 2>&1)'; \
		$(PYTHON) -m venv $(VENV); }
	@$(phase) 'updating pip'
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(phase) $(1)
	@$(VENV)/bin/python -m pip install -e '$(2)'
	@$(phase) "$(VENV) is ready: $$(ls -d $(VENV)/lib/python*/site-packages/*.dist-info | wc -l) packages$(,) \
		$$(du -sm $(VENV) | cut -f1) MB"
endef

$(RUNTIME): pyproject.toml setup.py
	$(call install,'installing labmesh and what it runs on: Dagster and its UI$(,) boto3$(,) the format readers',.)
	@touch $(RUNTIME)

$(TESTING): pyproject.toml setup.py
	$(call install,'installing labmesh with its test and lint tools: pytest$(,) moto$(,) ruff$(,) mypy',.[test])
	@touch $(RUNTIME) $(TESTING)

# `labmesh dev` execs dagster with SIGINT/SIGTERM at their defaults, so Ctrl-C and SIGTERM
# stop it cleanly even when make itself was started with them ignored (background, nohup).
dev: $(RUNTIME) $(PIPELINE_TOOLS)
	@$(phase) 'starting the platform (Ctrl-C stops it)'
	exec $(VENV)/bin/labmesh dev

# The portal's browser tests drive Debian's Chromium through Playwright, never a downloaded browser build.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	@$(phase) "installing Debian's chromium for the portal's browser tests"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The built-in pipelines run the tools bioinformaticians use, from Debian: fastp, seqkit, samtools, bcftools.
# (MultiQC comes from PyPI with the platform.) A tool that is missing makes its pipeline fall back or fail, as said.
PIPELINE_TOOLS := /usr/bin/fastp /usr/bin/seqkit /usr/bin/samtools /usr/bin/bcftools
$(PIPELINE_TOOLS) &:
	@$(phase) "installing Debian's fastp, seqkit, samtools and bcftools for the built-in pipelines"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fastp seqkit samtools bcftools

tools: $(PIPELINE_TOOLS)

# The tests are spread over workers, two a core (many tests wait on servers and runs) and four at most: on two
# cores, four workers took the suite from 25 minutes (one process) to 14, two workers to 17. Each worker takes a
# run of tests in order and steals from the others' queues once its own is done; conftest puts the files holding
# slow tests first, so no long scenario is left to run alone at the end. `pytest path` alone runs in one process.
WORKERS ?= $(shell n=$$(( $$(nproc) * 2 )); echo $$(( n < 4 ? n : 4 )))
PARALLEL := -n $(WORKERS) --dist worksteal

test: $(TESTING) $(CHROMIUM) $(PIPELINE_TOOLS)
	$(VENV)/bin/python -m pytest $(PARALLEL)

# The quick loop while working: everything but the tests marked slow (real servers, whole flows repeated).
test-quick: $(TESTING) $(CHROMIUM) $(PIPELINE_TOOLS)
	$(VENV)/bin/python -m pytest $(PARALLEL) -m "not slow"

lint: $(TESTING)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

# The deployment's checks, offline but for PyPI: the CDK app's own venv (infra/.venv, apart from the platform's),
# synthesis with cdk-nag (an unacknowledged finding fails it), cfn-lint and checkov (any finding fails), hadolint
# on the Dockerfile, the template's own tests, and the Kubernetes values and the aws instance file checked by theirs.
# jsii warns on every start that node 20 is past its end of life: that is the node this machine has.
INFRA_VENV := infra/.venv
INFRA_INSTALLED := $(INFRA_VENV)/.installed
$(INFRA_INSTALLED): infra/requirements.txt
	@$(phase) 'creating $(INFRA_VENV) for the CDK app and the template checks'
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	@$(INFRA_VENV)/bin/python -m pip install --quiet -r infra/requirements.txt
	@touch $(INFRA_INSTALLED)

infra-check: $(INFRA_INSTALLED) $(TESTING)
	@$(phase) 'synthesising the CDK app (cdk-nag runs as part of it)'
	cd infra && rm -rf cdk.out && CDK_OUTDIR=cdk.out .venv/bin/python app.py
	@$(phase) "the template's contract (infra/tests)"
	cd infra && .venv/bin/python -m pytest -q -p no:cacheprovider
	@$(phase) 'cfn-lint and checkov on the template'
	$(INFRA_VENV)/bin/cfn-lint infra/cdk.out/Labmesh.template.json
	$(INFRA_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f infra/cdk.out/Labmesh.template.json
	@$(phase) 'hadolint on the Dockerfile'
	$(INFRA_VENV)/bin/hadolint Dockerfile
	@$(phase) 'the Helm values and the aws instance file'
	$(VENV)/bin/python -m pytest -q labmesh_dagster_tests/deploy_config
	@$(phase) 'infra-check passed'

clean:
	rm -rf $(VENV) $(INFRA_VENV) infra/cdk.out .labmesh
