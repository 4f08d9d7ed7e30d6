# kindlab developer entry points. `make lab` on a fresh machine with Docker; `make test` in CI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

KIND_VERSION      ?= v0.33.0
KUSTOMIZE_VERSION ?= v5.7.1
BIN_DIR           := $(CURDIR)/.bin
CARGO             ?= cargo

# Test/air-gap tooling (`make offline-images`) records where it put kind, kubectl and the
# offline node image; when present, tests and `make lab` use them.
KINDLAB_CI_CACHE ?= /var/cache/kindlab-ci
-include $(KINDLAB_CI_CACHE)/env
export KINDLAB_TEST_NODE_IMAGE
ifneq ($(KINDLAB_TEST_NODE_IMAGE),)
export KINDLAB_NODE_IMAGE ?= $(KINDLAB_TEST_NODE_IMAGE)
endif

export PATH := $(BIN_DIR):$(if $(KINDLAB_CI_BIN),$(KINDLAB_CI_BIN):)$(PATH)

.PHONY: help
help:
	@echo "make lab             build kindlab, install kind/kustomize if missing, lab up, run the bad-image-tag lab"
	@echo "make test            fmt + clippy + every test (needs a running Docker engine)"
	@echo "make bench           kindlab up vs the shell-script way, same machine, same run"
	@echo "make offline-images  build kind + an offline kind node image (air-gapped machines, CI)"

.PHONY: build
build:
	$(CARGO) build --release --locked

# kind and kustomize at pinned versions, into .bin/, only when not already on PATH.
.PHONY: tools
tools:
	@mkdir -p $(BIN_DIR)
	@if ! command -v kind >/dev/null; then \
	  command -v go >/dev/null || { echo "kind is missing and so is Go: install Go (https://go.dev/doc/install), or kind itself (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"; exit 4; }; \
	  echo "installing kind $(KIND_VERSION) into .bin/"; \
	  GOBIN=$(BIN_DIR) go install sigs.k8s.io/kind@$(KIND_VERSION); \
	fi
	@if ! command -v kustomize >/dev/null && ! command -v kubectl >/dev/null; then \
	  command -v go >/dev/null || { echo "kustomize is missing and so is Go: install Go (https://go.dev/doc/install), or kubectl"; exit 4; }; \
	  echo "installing kustomize $(KUSTOMIZE_VERSION) into .bin/"; \
	  GOBIN=$(BIN_DIR) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

# The main job: the sample workspace's lab, up and running.
.PHONY: lab
lab: tools build
	./target/release/kindlab doctor
	./target/release/kindlab --workspace templates/workspace up
	./target/release/kindlab --workspace templates/workspace lab run bad-image-tag

.PHONY: test
# The integration tests share one lab (tests/it/support.rs: shared_lab); it is taken down at
# the end unless KEEP_TEST_LAB=1 (a warm re-run then reuses it).
test:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	@status=0; $(CARGO) test --locked -- --nocapture --test-threads=6 || status=$$?; \
	if [ "$${KEEP_TEST_LAB:-}" != 1 ] && [ -f target/tmp/shared-lab/kindlab.yaml ]; then \
	  ./target/debug/kindlab --workspace target/tmp/shared-lab down --purge || true; \
	fi; \
	exit $$status

.PHONY: offline-images
offline-images:
	bash .ci/offline-images/build.sh

.PHONY: bench
bench: build
	bash bench/run.sh
