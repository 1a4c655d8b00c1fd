# durable-codemode — every recipe runs in bash with scripts/toolchain.sh sourced
# (Node >= 22, Temporal CLI, npm packages; installed into .tools/ when missing).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help
TOOLCHAIN := . scripts/toolchain.sh

.PHONY: help setup build dev test test-unit test-workflow bench typecheck

help: ## Show this help
	@echo "Usage: make <target>"
	@echo
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-14s %s\n", $$1, $$2 }'

setup: ## Install the toolchain only (Node 24, Temporal CLI, npm packages, Temporal test server) into .tools/
	@$(TOOLCHAIN)
	@echo "Ready. Put the durable-codemode command on PATH: export PATH=\"$(CURDIR)/bin:\$$PATH\" (add it to your shell profile)"

build: ## Compile the CLI to dist/js and bundle the workflow code into dist/workflow-bundles (npm run build)
	@$(TOOLCHAIN) && npm run build

dev: build ## Run the dev server (bin/durable-codemode dev)
	@$(TOOLCHAIN) && bin/durable-codemode dev

test: ## Run the whole suite: checks, unit, workflow and integration tests on a dev server; cluster tests; integration tests on a native cluster
	@$(TOOLCHAIN) && scripts/test-all.sh

test-unit: ## Run the unit tests only: no Temporal server, seconds (npm run test:unit)
	@$(TOOLCHAIN) && npm run test:unit

test-workflow: ## Run the workflow tests on Temporal's time-skipping test server (needs Java; npm run test:workflow)
	@$(TOOLCHAIN) && npm run test:workflow

bench: ## Run the benchmarks (npm run bench)
	@$(TOOLCHAIN) && npm run bench

typecheck: ## Type-check the project (tsc -p .)
	@$(TOOLCHAIN) && npx tsc -p .
