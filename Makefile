# One Makefile for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/titan/gateway/v1/*.proto)
GEN_STAMP := titan/.generated
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
# `buf breaking` compares protos/ with main as committed: in a fresh clone of main
# that is main against itself, in a work tree its uncommitted edits against main.
# Without a local `main` branch it uses origin/main, and without that HEAD.
# Override: make lint BUF_AGAINST='.git#tag=v1.0.0'
HASH := \#
BUF_AGAINST ?= $(shell \
  if git rev-parse -q --verify refs/heads/main >/dev/null 2>&1; then echo '.git$(HASH)branch=main'; \
  elif git rev-parse -q --verify refs/remotes/origin/main >/dev/null 2>&1; then echo '.git$(HASH)ref=origin/main'; \
  else echo '.git$(HASH)ref=HEAD'; fi)
ES_VERSION := 2.17.0
PROTOC_GEN_ES := .tools/es/node_modules/.bin/protoc-gen-es

.DEFAULT_GOAL := help
.PHONY: help install gen run test lint clients node-client bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	# compat mode puts the repo root on sys.path, so the generated `titan`
	# package is importable from console scripts too.
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

install: $(STAMP) $(GEN_STAMP) ## create .venv, install the package and dev tools, generate stubs

$(GEN_STAMP): $(PROTOS) $(STAMP)
	rm -rf titan
	mkdir -p titan/gateway/v1
	# The descriptor set keeps the protos' comments for server reflection
	# (gateway/reflection.py); the generated modules strip them.
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. \
	  --include_imports --include_source_info \
	  --descriptor_set_out=titan/gateway/v1/descriptor_set.binpb $(PROTOS)
	touch titan/__init__.py titan/gateway/__init__.py titan/gateway/v1/__init__.py
	touch $@

gen: $(GEN_STAMP) ## generate the protobuf/gRPC stubs from protos/

run: install ## run the gateway on 127.0.0.1:50051 (emulator backend, no AWS credentials)
	$(PY) -m gateway serve

# buf too: tests/packaging/test_contract.py runs it (it skips only without it).
test: install $(BUF) ## run the whole test suite
	$(PY) -m pytest -q

$(BUF):
	mkdir -p .tools && cd .tools && npm install --no-save --silent @bufbuild/buf@$(BUF_VERSION)

lint: install $(BUF) ## ruff, mypy, buf lint and buf breaking (against main)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(BUF) breaking --against '$(BUF_AGAINST)'

# Its own npm prefix: an `npm install --no-save` in .tools (buf's recipe) prunes
# whatever else is installed there.
$(PROTOC_GEN_ES):
	npm install --prefix .tools/es --no-save --silent @bufbuild/protoc-gen-es@$(ES_VERSION)

# Local plugins only (buf.gen.yaml); Debian's protobuf-compiler-grpc-java-plugin
# names the Java plugin grpc_java_plugin, so it is linked under its usual name.
CLIENTS_PATH := $(CURDIR)/.tools/es/node_modules/.bin:$(CURDIR)/.tools/bin:$$PATH
clients: $(BUF) $(PROTOC_GEN_ES) ## generate Go, Java and TypeScript clients into gen/ (buf.gen.yaml)
	@mkdir -p .tools/bin
	@if ! command -v protoc-gen-grpc-java >/dev/null && command -v grpc_java_plugin >/dev/null; then \
	  ln -sf "$$(command -v grpc_java_plugin)" .tools/bin/protoc-gen-grpc-java; fi
	@missing=; for p in protoc protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-java protoc-gen-es; do \
	  PATH="$(CLIENTS_PATH)" command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "not on PATH:$$missing (README: Generating clients)" >&2; exit 1; fi
	PATH="$(CLIENTS_PATH)" $(BUF) generate

# The Node client (clients/node/README.md): npm ci installs the exact versions of
# its package-lock.json (grpc-js, Connect-ES, and buf + protoc-gen-es to generate
# with); `generate` writes protos/ as ECMAScript into clients/node/gen/ (gitignored).
# tests/clients/test_node_client.py runs it against a real gateway.
node-client: ## install the Node client (npm ci) and generate its code into clients/node/gen/
	npm ci --prefix clients/node --no-audit --no-fund
	npm run --prefix clients/node generate

bench: install ## run the benchmarks (prints a table)
	$(PY) -m bench

clean: ## remove generated files and the venv
	rm -rf titan build dist gen $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache \
	  clients/node/node_modules clients/node/gen
