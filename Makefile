# secretsync — the two commands a newcomer needs are `make demo` and `make test`.
# Both set up what they need: Node 24 (when the system Node is older than 22.19), npm ci, the
# test bed's Go-built binaries (kube-apiserver, etcd, kubectl, helm, kubeconform) and the moto venv.
# Caches live outside the repo, in $(CACHE).
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE ?= $(or $(SECRETSYNC_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/secretsync)
export SECRETSYNC_CACHE := $(CACHE)
NODE24_DIR := $(CACHE)/node
# @kubernetes/client-node 2.x (undici 8) needs Node >= 22.19; otherwise use a cached Node 24.
SYSTEM_NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null && echo yes)
ifneq ($(SYSTEM_NODE_OK),yes)
export PATH := $(NODE24_DIR)/node_modules/.bin:$(PATH)
NODE_DEP := $(NODE24_DIR)/node_modules/.bin/node
endif

.PHONY: help
help:
	@echo "make demo      run the whole story on the local test bed"
	@echo "make test      lint, type-check, unit, integration and fault tests (sets everything up)"
	@echo "make test-faults  only the fault suite: crashes, AWS faults, API server restarts, hostile input"
	@echo "make test-unkind  only the unkind-AWS suite: IAM propagation delays, Lambda limits, quotas"
	@echo "make test-node helm install on a real node (containerd + kubelet, as root); CI runs it too"
	@echo "make testbed   start the test bed and print export lines; Ctrl-C stops it"
	@echo "make build     bundle the controller and the Lambda zip into dist/"
	@echo "make bench     benchmarks; results in bench/results.json and the README"
	@echo "make bench-capacity  only the controller-capacity run (1000 SecretSyncs, rate limits lifted)"

$(NODE24_DIR)/node_modules/.bin/node:
	@echo "Installing Node 24 into $(NODE24_DIR) (the system Node is older than 22.19, or make test-node needs it for its image)"
	mkdir -p $(NODE24_DIR)
	npm install --prefix $(NODE24_DIR) --no-audit --no-fund --loglevel=error node@24

node_modules/.package-lock.json: package-lock.json $(NODE_DEP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: deps testbed-deps
deps: node_modules/.package-lock.json

testbed-deps:
	bash e2e/testbed/build-binaries.sh
	bash e2e/testbed/setup-moto.sh

.PHONY: build
build: deps
	npm run build

.PHONY: lint typecheck
lint: deps
	npx biome check .
typecheck: deps
	npx tsc -p tsconfig.json

.PHONY: test test-unit test-integration test-faults test-unkind test-node
# The fault suite runs here too, with 60 SecretSyncs in its AWS-faults test instead of 200
# (make test-faults) to keep make test well under 30 minutes.
test: deps testbed-deps build lint typecheck
	SECRETSYNC_FAULT_SYNCS=$${SECRETSYNC_FAULT_SYNCS:-60} npx vitest run --project unit --project integration

test-unit: deps
	npx vitest run --project unit

test-integration: deps testbed-deps build
	npx vitest run --project integration

# Also part of `make test`.
test-faults: deps testbed-deps build
	npx vitest run --project integration e2e/faults

# Also part of `make test`: the test bed's IAM propagation delays on (e2e/unkind switches them on and
# off itself), Lambda's limits and the account's quotas enforced.
test-unkind: deps testbed-deps build
	npx vitest run --project integration e2e/unkind

# Not part of `make test` (it needs root and installs Debian packages); .ci/run runs it after.
# A real node beside the test bed (e2e/node): containerd + runc + CNI bridge, kubelet, scheduler,
# controller-manager; the image built from the Dockerfile with buildah; the chart installed with helm.
# images.sh puts the cached Node 24 into the base image, whatever Node runs the tests.
test-node: deps testbed-deps build $(NODE24_DIR)/node_modules/.bin/node
	bash e2e/node/setup-node.sh
	npx vitest run --project node

.PHONY: testbed demo bench bench-capacity
testbed: deps testbed-deps build
	node e2e/testbed/cli.ts

# KEEP=1 leaves the test bed and the controller running at the end.
demo: deps testbed-deps build
	KEEP=$(KEEP) node e2e/demo.ts

bench: deps testbed-deps build
	node bench/run.ts

bench-capacity: deps testbed-deps build
	node bench/capacity.ts
