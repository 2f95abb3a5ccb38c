# Django 6.1 needs Python 3.12+; this machine's default python3 is 3.11, so pick one explicitly,
# the newest found: 3.12.0 and 3.12.1 run large functions so slowly under sys.settrace (which
# coverage uses) that some tests take many times longer in make test's coverage pass.
PYTHON ?= $(shell for p in python3.14 python3.13 $$(ls -d $(HOME)/.pyenv/versions/3.1[2-9]* 2>/dev/null | sort -rV | sed 's|$$|/bin/python3|') python3.12 /usr/bin/python3; do \
	if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then echo "$$p"; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

WORKERS ?= 2

.PHONY: help install install-runtime lock migrate azurite run serve worker test test-long mutate lint format bench clean

help:
	@echo "make run    serve the app on the embedded default with the sample knowledge base"
	@echo "make test   install and run every test"
	@echo "make test-long  the same with the long property-based runs (RAGSITE_TEST_LONG=1)"
	@echo "make mutate mutation testing, a score per module (docs/mutation-score.md)"
	@echo "make lint   ruff check and format check, then mypy"
	@echo "make lock   recompile requirements.lock from requirements*.txt (after changing a pin)"
	@echo "make migrate  apply database migrations (a deployment step, run once per release)"
	@echo "make serve  gunicorn + uvicorn workers (WORKERS=2), runtime requirements only, no migrate"
	@echo "make worker the index task worker, to run beside make serve"
	@echo "make bench  the concurrency benchmark (results in bench/results/)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is required (set PYTHON=/path/to/python3.12)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# requirements*.txt pin the direct dependencies; requirements.lock (make lock) pins every package,
# with hashes, and is what gets installed.
$(VENV)/.installed: $(BIN)/python requirements.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	touch $@

install: $(VENV)/.installed

# Production hosts: the runtime requirements only, no test or benchmark tools.
$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install-runtime: $(VENV)/.runtime

# A deployment step of its own (once per release, from one host), never part of a host's start.
migrate: install-runtime
	$(BIN)/python manage.py migrate --noinput

# Azurite (the Azure Storage emulator) for the Blob Storage tests, into .ci/azurite with npm.
# Without Node.js/npm the tests that need it skip (and fail under CI=true).
AZURITE := .ci/azurite/node_modules/.bin/azurite-blob
$(AZURITE): .ci/azurite/package.json .ci/azurite/package-lock.json
	cd .ci/azurite && npm ci --no-audit --no-fund --loglevel=error
	touch $@

azurite:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(AZURITE); \
	else echo "npm not found: the Azure Blob Storage tests will skip"; fi

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Serving http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/)  Ctrl-C stops the server and the task worker."
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(BIN)/python manage.py db_worker --queue-name '*' --interval 0.5 & \
	$(BIN)/uvicorn ragsite.asgi:application --host $(HOST) --port $(PORT)

# Production-style: gunicorn managing uvicorn workers. Long streams are fine (uvicorn workers
# heartbeat, so --timeout only catches a hung worker); on SIGTERM running answers get
# --graceful-timeout seconds to finish. Run the task worker(s) beside it: make worker.
serve: install-runtime
	DJANGO_STATIC_COLLECTED=true $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DJANGO_STATIC_COLLECTED=true $(BIN)/gunicorn ragsite.asgi:application \
		-k uvicorn_worker.UvicornWorker \
		--workers $(WORKERS) --bind $(HOST):$(PORT) --timeout 60 --graceful-timeout 30 \
		--keep-alive 5 --max-requests 10000 --max-requests-jitter 1000

worker: install-runtime
	$(BIN)/python manage.py db_worker --queue-name '*' --interval 1

# Every package for Python 3.12+ on any platform, from PyPI only. Pins already in the lock are kept
# while they still fit; LOCK_ARGS=--upgrade moves every transitive dependency to its newest release.
lock: install
	$(BIN)/uv pip compile requirements-dev.txt --quiet --universal --python-version 3.12 \
		--generate-hashes --index-url https://pypi.org/simple --custom-compile-command "make lock" \
		$(LOCK_ARGS) -o requirements.lock

test: install azurite
	scripts/test.sh $(PYTEST_ARGS)

# The same suite with the property-based tests at full length (hundreds of examples each).
test-long: install azurite
	RAGSITE_TEST_LONG=1 scripts/test.sh $(PYTEST_ARGS)

# Mutation testing (not part of make test): MODULES="knowledge/access.py chat/limits.py" for a few.
mutate: install
	scripts/mutate.sh $(MODULES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The concurrency benchmark (bench/README.md): about 16 minutes, results in bench/results/.
bench: install
	$(BIN)/python -m bench.run --profile

clean:
	rm -rf $(VENV) var
