# Every CI step is a make target; .ci/run calls `make deps` then `make test`.
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test deps fmt-check clippy cargo-test run

## test: formatting, lints and every test (what CI runs)
test: fmt-check clippy cargo-test

## deps: install what the tests need on a fresh machine (idempotent)
deps:
	scripts/install-tools.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

cargo-test:
	$(CARGO) test --all-targets

## run: the webhook on defaults (self-signed certificate for localhost, no cluster needed)
run:
	$(CARGO) run --release --bin drain-webhook -- serve

## manifests: regenerate manifests/drain-webhook.yaml from the chart (tests/chart.rs checks drift)
.PHONY: manifests
manifests: deps
	scripts/render-manifests.sh
