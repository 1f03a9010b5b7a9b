# One place for the commands humans and CI run.
CARGO ?= cargo
TRACE ?= target/traces/azure-2000
BIN := target/release/forewarm

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TARGET := x86_64-unknown-linux-gnu
RUNNER_IMAGE := forewarm/runner:$(VERSION)
NODE_IMAGE := forewarm/node:$(VERSION)
PROBE_IMAGE := forewarm/probe:test
STATIC := target/$(TARGET)/release

.PHONY: sim test verify lint fmt-check deny fix build bench-sim images up test-tools

## The main job: build, generate a 2000-app day in the Azure 2019 format, compare policies.
sim: build
	@test -f $(TRACE)/invocations_per_function_md.anon.d01.csv || \
		$(BIN) trace gen --apps 2000 --days 1 --seed 1 --out $(TRACE)
	$(BIN) trace stats $(TRACE)
	$(BIN) simulate --trace $(TRACE) --skip-minutes 600 --hours 8 --app-band 0.3:0.7 \
		--plot target/pareto.svg

build:
	$(CARGO) build --release --bin forewarm

## Container images, built locally from static binaries (no registry is reachable): the
## runner (workload containers), the node (cluster/compose.yaml, the testcontainers tests) and
## the test-only probe (the tenant isolation tests).
images:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(TARGET) \
		-p forewarm-runner -p forewarm -p forewarm-probe
	mkdir -p target/images/runner target/images/node target/images/probe
	strip -o target/images/runner/forewarm-runner $(STATIC)/forewarm-runner
	strip -o target/images/node/forewarm $(STATIC)/forewarm
	strip -o target/images/probe/forewarm-probe $(STATIC)/forewarm-probe
	docker build -q -t $(RUNNER_IMAGE) -f cluster/runner.Dockerfile target/images/runner
	docker build -q -t $(NODE_IMAGE) -f cluster/node.Dockerfile target/images/node
	docker build -q -t $(PROBE_IMAGE) -f cluster/probe.Dockerfile target/images/probe

## One live node on Docker (Ctrl-C stops it and removes its containers).
up: build images
	FOREWARM_RUNNER_BIN=$(CURDIR)/target/$(TARGET)/release/forewarm-runner $(BIN) up --time-scale 60

## What the tests need besides Rust and Docker (cargo-nextest, the chaos scripts' tools),
## installed when missing.
test-tools:
	scripts/install-test-tools.sh

## The test suite (what CI runs after lint); builds the images the Docker tests use, then
## runs the quick chaos scenarios against them (chaos/run-all.sh --quick).
test: test-tools images
	FOREWARM_RUNNER_IMAGE=$(RUNNER_IMAGE) FOREWARM_NODE_IMAGE=$(NODE_IMAGE) \
	FOREWARM_PROBE_IMAGE=$(PROBE_IMAGE) FOREWARM_RUNNER_BIN=$(CURDIR)/target/$(TARGET)/release/forewarm-runner \
		$(CARGO) nextest run --workspace --profile ci
	FOREWARM_BIN=$(STATIC)/forewarm chaos/run-all.sh --quick

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check deny
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The dependency tree against deny.toml (licences, bans, sources; advisories where the
## RustSec database is reachable).
deny:
	scripts/deny.sh

## Read-only checks: formatting, lints, tests.
verify: lint test

fix:
	$(CARGO) fmt --all
	$(CARGO) clippy --workspace --all-targets --fix --allow-dirty -- -D warnings

## Simulator speed and quality figures for docs/benchmarks.md.
bench-sim: build
	scripts/bench-sim.sh
