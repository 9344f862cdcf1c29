# One Makefile for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/titan/gateway/v1/*.proto)
GEN_STAMP := titan/.generated
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf

.DEFAULT_GOAL := help
.PHONY: help install gen run test lint bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

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
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch titan/__init__.py titan/gateway/__init__.py titan/gateway/v1/__init__.py
	touch $@

gen: $(GEN_STAMP) ## generate the protobuf/gRPC stubs from protos/

run: install ## run the gateway on 127.0.0.1:50051 (emulator backend, no AWS credentials)
	$(PY) -m gateway serve

test: install ## run the whole test suite
	$(PY) -m pytest -q

$(BUF):
	mkdir -p .tools && cd .tools && npm install --no-save --silent @bufbuild/buf@$(BUF_VERSION)

lint: install $(BUF) ## ruff, mypy and buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint

bench: install ## run the benchmarks (prints a table)
	$(PY) -m bench

clean: ## remove generated files and the venv
	rm -rf titan $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
