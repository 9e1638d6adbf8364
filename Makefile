# Run `make help` for the targets. Every target sets up .venv itself on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO := proto/moderation/v1/moderation.proto
GEN := moderation/v1/moderation_pb2.py moderation/v1/moderation_pb2.pyi \
       moderation/v1/moderation_pb2_grpc.py moderation/v1/moderation_pb2_grpc.pyi
HOST ?= 127.0.0.1
PORT ?= 50051
IMAGE ?= moderation:latest
# The contract as last released: `make lint` refuses a change that would break its clients.
# At a release: node_modules/.bin/buf build -o proto/released/VERSION.binpb and point this at it.
RELEASED := proto/released/0.1.0.binpb

# The C extension (moderation/_scan.c) is built in place by the editable install.
$(STAMP): pyproject.toml moderation/_scan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray,train,otel,parquet]'
	touch $(STAMP)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F ':.*## ' -v host='$(HOST)' -v port='$(PORT)' -v image='$(IMAGE)' \
		'{gsub(/\$$\(HOST\)/, host, $$2); gsub(/\$$\(PORT\)/, port, $$2); \
		gsub(/\$$\(IMAGE\)/, image, $$2); printf "  %-10s %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## Create .venv and install the package with its dev tools

.PHONY: run
run: $(STAMP) ## Serve on $(HOST):$(PORT) with the embedded defaults (no API key needed)
	$(BIN)/moderation serve --host $(HOST) --port $(PORT)

# The tests also run the Node.js example client and buf (both from npm).
NODE_DEPS := examples/node/node_modules/.installed node_modules/.bin/buf

.PHONY: test
test: $(STAMP) $(NODE_DEPS) ## Run the tests
	$(BIN)/pytest -q

examples/node/node_modules/.installed: examples/node/package-lock.json
	npm ci --prefix examples/node --no-audit --no-fund --silent
	touch $@

.PHONY: proto
proto: $(STAMP) ## Regenerate the Python code in moderation/v1 from proto/
	$(BIN)/python -m grpc_tools.protoc -I proto \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
		--plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--python_out=. --mypy_out=. --grpc_python_out=. --mypy_grpc_out=. $(PROTO)

.PHONY: lint
lint: $(STAMP) node_modules/.bin/buf ## buf lint and breaking, ruff, mypy --strict, import contracts
	node_modules/.bin/buf lint
	node_modules/.bin/buf breaking --against $(RELEASED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

node_modules/.bin/buf:
	npm install --no-save --no-audit --no-fund --silent @bufbuild/buf@1

.PHONY: check
check: proto ## Fail when the committed generated code drifts from proto/
	@git diff --exit-code --stat -- moderation/v1 || \
		{ echo "moderation/v1 is out of date with proto/: run 'make proto' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- moderation/v1)" || \
		{ echo "untracked generated files in moderation/v1: commit them"; exit 1; }

# Folders cold/ (train.csv, dev.csv) and swsr/ (SexComment.csv) as moderation/data/scorer/README.md
# describes them.
DATA ?=

.PHONY: scorer
scorer: $(STAMP) ## Retrain the shipped scorer from COLD and SWSR: make scorer DATA=folder
	@test -n "$(DATA)" || { echo "set DATA to the folder holding cold/ and swsr/"; exit 2; }
	$(BIN)/moderation train --name cold-swsr --model-version 2026.12.0 \
		--dataset $(DATA)/cold/train.csv --dataset $(DATA)/cold/dev.csv \
		--dataset $(DATA)/swsr/SexComment.csv --category-col topic \
		--category-map race=HATE/race --category-map region=HATE/regional \
		--category-map gender=HATE/gender --output moderation/data/scorer/default.scorer

.PHONY: bench
bench: $(STAMP) ## Measure throughput, latency and memory (see BENCHMARKS.md)
	$(BIN)/python -m tests.bench

.PHONY: load
load: $(STAMP) ## Load the server on loopback next to a bare echo server (see BENCHMARKS.md)
	$(BIN)/python -m tests.load

.PHONY: lock
lock: $(STAMP) ## Re-pin requirements.lock (the image installs exactly these: the package and its otel extra)
	$(BIN)/uv pip compile pyproject.toml --extra otel --universal --python-version 3.11 --generate-hashes \
		--upgrade --quiet -o requirements.lock

.PHONY: image
image: $(STAMP) ## Build the container image $(IMAGE) and smoke-test it (needs Docker)
	docker build --tag $(IMAGE) .
	$(BIN)/python -m tests.smoke --image $(IMAGE)

.PHONY: fmt
fmt: $(STAMP) ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis build \
		moderation/_scan.*.so
