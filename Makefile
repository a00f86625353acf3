# govhall — the two commands are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup protos lint lint-protos breaking breaking-baseline check-generated test-unit test-integration test-e2e clean

run: setup ## Start the whole suite on the embedded default and print where everything is.
	$(PY) -m deploy.local.runner

test: setup ## Unit, integration and end-to-end tests.
	$(PY) -m pytest tests

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.bin/buf: package.json package-lock.json
	npm ci --no-audit --no-fund --silent

protos: setup ## Regenerate gen/ from protos/.
	flock build.lock $(PY) tools/genprotos.py

check-generated: protos ## Fails when gen/ is not what protos/ generates.
	git diff --exit-code -- gen/ || (echo "gen/ is stale: run make protos and commit" && exit 1)
	test -z "$$(git status --porcelain -- gen/)" || (git status --porcelain -- gen/ && echo "gen/ has untracked or changed files: run make protos and commit" && exit 1)

lint-protos: protos node_modules/.bin/buf ## buf lint (STANDARD) over the protos.
	cd protos && ../node_modules/.bin/buf lint ../build/govhall.binpb --config buf.yaml --path govhall

breaking: protos node_modules/.bin/buf ## buf breaking (FILE) against main's last landed protos.
	cd protos && ../node_modules/.bin/buf breaking ../build/govhall.binpb --against breaking-baseline.binpb --config buf.yaml --path govhall

breaking-baseline: setup ## After a landing on main: make breaking-baseline REF=<main's head>, then commit it.
	@test -n "$(REF)" || (echo "usage: make breaking-baseline REF=<commit whose protos are the baseline>" && exit 2)
	flock build.lock $(PY) tools/genprotos.py --breaking-baseline $(REF)

lint: setup lint-protos ## ruff and mypy --strict on the project's code, buf lint on the protos.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy kernel services workflows deploy tests tools $(wildcard bench)

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

test-e2e: setup
	$(PY) -m pytest tests/e2e

clean:
	rm -rf var build
