# yunzhen: the two commands a new developer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
SYSTEM_PACKAGES := libsqlite3-dev libcurl4-openssl-dev pkg-config
PYTHON_PACKAGES := pytest requests pyyaml openapi-spec-validator cryptography
SWIFT_SOURCES := Package.swift Shared Services Tools Tests
RUN_DATA ?= .data/run

.PHONY: run test build build-tests unit e2e lint deploy-check bench bench-queue bench-booking bench-gate deps test-deps clean

## Build release, load the demo data into a fresh data root, and run all six processes (Ctrl-C stops them).
run: deps
	swift build -c release
	rm -rf "$(RUN_DATA)"
	exec .build/release/yunzhen dev --data "$(RUN_DATA)" --bin .build/release --seed seeds

## Every test: Swift unit and integration tests, end-to-end tests on real processes, lint, deploy checks.
test: deps test-deps build-tests unit e2e lint deploy-check

build:
	swift build -c release

# One build of everything in debug, tests included; the steps after it never rebuild.
build-tests:
	swift build --build-tests

unit:
	swift test --skip-build

e2e:
	YUNZHEN_BIN=.build/debug python3 -m pytest -c Tests/e2e/pytest.ini Tests/e2e

lint:
	swift format lint --strict --recursive --parallel $(SWIFT_SOURCES)
	python3 Tests/tools/validate_openapi.py Services/*/Sources/openapi.yaml

deploy-check:
	bash Tests/deploy/verify_units.sh

## Edge vs nginx throughput and latency (a benchmark, not a test): see Tests/Benchmarks/README.md.
bench: deps
	swift build -c release
	ROUTE=openapi.yaml bash Tests/Benchmarks/edge_proxy.sh
	ROUTE=departments bash Tests/Benchmarks/edge_proxy.sh

## The queue against NATS JetStream on the same disk (a benchmark, not a test): see Tests/Benchmarks/README.md.
bench-queue: deps
	swift build -c release --product queue-bench
	bash Tests/Benchmarks/queue.sh

## Confirmed bookings per second through the edge with the sandbox payment, and the race for the last places.
bench-booking: deps test-deps
	swift build -c release
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y -qq wrk
	python3 Tests/Benchmarks/booking_bench.py

## Entry passes checked per second at the door through the edge, against the disk's fsync rate.
bench-gate: deps test-deps
	swift build -c release
	python3 Tests/Benchmarks/gate_bench.py

deps:
	@missing=""; for package in $(SYSTEM_PACKAGES); do \
	  dpkg -s "$$package" >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; fi

# zbarimg (zbar-tools) decodes the entry passes' QR codes in the tests, as an independent reader would.
test-deps:
	@command -v zbarimg >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq zbar-tools)
	@python3 -c "import pytest, requests, yaml, openapi_spec_validator, cryptography" 2>/dev/null || \
	  python3 -m pip install --quiet $(PYTHON_PACKAGES) || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-pytest python3-requests python3-yaml python3-openapi-spec-validator python3-cryptography)

clean:
	rm -rf .build .data
