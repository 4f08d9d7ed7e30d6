# kindlab developer entry points. `make lab` and `make test` each set a fresh machine up
# first, saying what they do: the Docker engine (started, or installed on Debian/Ubuntu as
# root), then the images (in the engine, from a bundle, pulled, or built offline).
SHELL := /bin/bash
.DEFAULT_GOAL := help

KIND_VERSION      ?= v0.33.0
KUSTOMIZE_VERSION ?= v5.7.1
BIN_DIR           := $(CURDIR)/.bin
CARGO             ?= cargo
# A bundle to take the images from on a machine that cannot pull (`kindlab bundle create`
# makes one; ./kindlab-bundle.tar is used when present).
BUNDLE            ?=
# Where `make offline-images` puts kind, kubectl and its env file (the node image's name);
# recipes read that file through .ci/with-env.sh when they run, since the set-up before
# them may have just written it.
export KINDLAB_CI_CACHE ?= /var/cache/kindlab-ci
WITH_ENV := bash .ci/with-env.sh

export PATH := $(BIN_DIR):$(PATH)

# `make install`: kindlab into $(DESTDIR)$(BINDIR), and beside it the kind and kubectl (and
# kustomize) make provided itself (offline tool set, .bin/), never over a file kindlab did not
# put there; recorded in $(PREFIX)/share/kindlab/install-manifest for `make uninstall`.
# TOOLS=0 installs kindlab alone. KINDLAB=path installs another build (CI: the debug one).
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
TOOLS   ?= 1
INSTALL  = PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" BINDIR="$(BINDIR)" TOOLS="$(TOOLS)" \
           BIN_DIR="$(BIN_DIR)" KINDLAB="$(KINDLAB)" $(WITH_ENV) bash .ci/install.sh

.PHONY: help
help:
	@echo "make lab             set up this machine, build kindlab, lab up, run the bad-image-tag lab"
	@echo "make test            set up this machine, then fmt + clippy + every test"
	@echo "make install         kindlab, and the kind and kubectl make provided, into PREFIX/bin (/usr/local/bin)"
	@echo "make uninstall       removes what make install put there, nothing else"
	@echo "make engine          a running Docker engine: started, or installed (Debian/Ubuntu, root)"
	@echo "make images          the lab's images: present, from BUNDLE=FILE, pulled, or built offline"
	@echo "make offline-images  build kind, kubectl and an offline kind node image (air-gapped machines)"
	@echo "make bench           kindlab vs the scripts, ctlptl and bare kind, every verb's target (bench/README.md)"
	@echo "make bench-build     kindlab build (cold, warm after a one-file change) vs docker build of the same context"
	@echo "make bench-room      a workshop room of 30 attendees on one kind cluster (ROOM_ATTENDEES=N)"
	@echo "make fuzz            every fuzz target in turn, FUZZ_SECONDS each (fuzz/README.md; not in CI)"

.PHONY: build
build:
	$(CARGO) build --release --locked

.PHONY: engine
engine:
	@bash .ci/docker-engine.sh

# KINDLAB is the binary that loads a bundle (release for `make lab`, debug for `make test`).
KINDLAB ?= ./target/release/kindlab
.PHONY: images
images: engine
	@KINDLAB=$(KINDLAB) BUNDLE=$(BUNDLE) bash .ci/lab-images.sh

# kind and kustomize at pinned versions, into .bin/, only when not already on PATH (the
# offline tool set counts).
.PHONY: tools
tools:
	@mkdir -p $(BIN_DIR)
	@$(WITH_ENV) bash -c ' \
	  if ! command -v kind >/dev/null; then \
	    command -v go >/dev/null || { echo "kind is missing and so is Go: install Go (https://go.dev/doc/install), or kind itself (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"; exit 4; }; \
	    echo "installing kind $(KIND_VERSION) into .bin/"; \
	    GOBIN=$(BIN_DIR) go install sigs.k8s.io/kind@$(KIND_VERSION); \
	  fi; \
	  if ! command -v kustomize >/dev/null && ! command -v kubectl >/dev/null; then \
	    command -v go >/dev/null || { echo "kustomize is missing and so is Go: install Go (https://go.dev/doc/install), or kubectl"; exit 4; }; \
	    echo "installing kustomize $(KUSTOMIZE_VERSION) into .bin/"; \
	    GOBIN=$(BIN_DIR) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	  fi'

# The main job: a fresh sample workspace (`kindlab init`, in .lab/ unless LAB_DIR says
# otherwise), its lab up and running, and the lab text's lab run once.
LAB_DIR ?= $(CURDIR)/.lab
.PHONY: lab
lab: engine build
	@$(MAKE) --no-print-directory images KINDLAB=./target/release/kindlab
	@$(MAKE) --no-print-directory tools
	$(WITH_ENV) ./target/release/kindlab doctor
	@[ -f $(LAB_DIR)/kindlab.yaml ] || ./target/release/kindlab init $(LAB_DIR)
	$(WITH_ENV) ./target/release/kindlab --workspace $(LAB_DIR) up
	$(WITH_ENV) ./target/release/kindlab --workspace $(LAB_DIR) lab run bad-image-tag
	@# The next steps, made true and then checked in a new login shell with a clean environment.
	@if $(INSTALL) can-install; then \
	  $(INSTALL) install && \
	  $(WITH_ENV) bash .ci/clean-env-check.sh --use-context --cluster $(LAB_DIR) && \
	  echo "The lab's workspace is $(LAB_DIR): in a new shell, cd there, then 'kindlab lab list' and 'kindlab lab start NAME'."; \
	else \
	  echo "The lab is up in $(LAB_DIR), but kindlab is not installed ($(DESTDIR)$(BINDIR) is not writable by $$(id -un)): run 'sudo make install' (or 'make install PREFIX=$$HOME/.local'), then in a new shell cd $(LAB_DIR) and run 'kindlab lab list'."; \
	fi

# Builds the release binary first when cargo is on PATH (under sudo it often is not: then
# the binary `make build` or `make lab` made is installed).
.PHONY: install
install:
	@if [ "$(KINDLAB)" = ./target/release/kindlab ]; then \
	  if command -v $(CARGO) >/dev/null 2>&1; then $(CARGO) build --release --locked; \
	  else echo "[install] $(CARGO) is not on PATH: installing the kindlab built before ($(KINDLAB))"; fi; \
	fi
	@$(INSTALL) install

.PHONY: uninstall
uninstall:
	@$(INSTALL) uninstall

.PHONY: test
# The integration tests share one lab (tests/it/support.rs: shared_lab); it is taken down at
# the end unless KEEP_TEST_LAB=1 (a warm re-run then reuses it).
test: engine
	$(CARGO) build --locked
	@$(MAKE) --no-print-directory images KINDLAB=./target/debug/kindlab
	@bash .ci/browser.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	@status=0; $(WITH_ENV) $(CARGO) test --locked -- --nocapture --test-threads=6 || status=$$?; \
	if [ "$${KEEP_TEST_LAB:-}" != 1 ] && [ -f target/tmp/shared-lab/kindlab.yaml ]; then \
	  $(WITH_ENV) ./target/debug/kindlab --workspace target/tmp/shared-lab down --purge || true; \
	fi; \
	exit $$status

.PHONY: offline-images
offline-images: engine
	bash .ci/offline-images/build.sh
	bash .ci/offline-images/netpol.sh
	bash .ci/offline-images/gitops.sh

.PHONY: bench
bench: engine build
	@$(MAKE) --no-print-directory images KINDLAB=./target/release/kindlab
	$(WITH_ENV) bash bench/run.sh
	KINDLAB=./target/release/kindlab $(WITH_ENV) bash bench/build.sh
	@# GitOps mode: median push → running, and the controller's share of a cold up (bench/gitops.sh)
	$(WITH_ENV) bash bench/gitops.sh

# Image builds alone: kindlab's cold and warm build against `docker build` of the same context
# (bench/build.sh; numbers in bench/results/build.json).
.PHONY: bench-build
bench-build: engine build
	KINDLAB=./target/release/kindlab $(WITH_ENV) bash bench/build.sh

# A workshop room at once: provision, 30 labs started together, fixed, checked, reset
# (bench/room.sh; numbers in bench/results/room.json).
.PHONY: bench-room
bench-room: engine build
	@$(MAKE) --no-print-directory images KINDLAB=./target/release/kindlab
	$(WITH_ENV) bash bench/room.sh

# Every parser of user input under cargo-fuzz, each target in turn for FUZZ_SECONDS (default
# 60), or FUZZ_RUNS inputs; prints the executions and any crash. Not part of `make test`.
.PHONY: fuzz
fuzz:
	bash fuzz/run.sh
