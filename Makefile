# Every CI step is a make target; .ci/run calls `make deps` then `make test`
# (`test` also runs `deps`, which is idempotent, so `make test` works on a fresh machine).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test deps fmt-check clippy cargo-test run

## test: formatting, lints and every test (what CI runs)
test: deps fmt-check clippy cargo-test helper-check

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

## manifests: regenerate manifests/*.yaml from the chart (tests/chart.rs checks drift)
.PHONY: manifests
manifests: deps
	scripts/render-manifests.sh

## helper: the static drain-helper binary for the host (crt-static glibc); prints its path
# Size flags (docs/helper.md): no relocations (non-PIE), no unwind tables or their index
# (panic = "abort" never unwinds), identical code folded. Together about 60 KiB.
HELPER_RUSTFLAGS = -C target-feature=+crt-static -C relocation-model=static \
	-C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,--icf=all
HOST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
HELPER_BIN = $(or $(CARGO_TARGET_DIR),target)/$(HOST_TRIPLE)/helper/drain-helper
.PHONY: helper helper-check
helper:
	RUSTFLAGS="$(HELPER_RUSTFLAGS)" $(CARGO) build --profile helper --no-default-features --bin drain-helper --target $(HOST_TRIPLE)
	@echo $(HELPER_BIN)

## helper-check: the helper is static, under 1 MiB, and installs itself in an empty chroot
helper-check: helper
	scripts/check-helper.sh $(HELPER_BIN)

## bench: the server against its baseline over TLS + HTTP/2 (h2load) and the planner alone
## (criterion); prints tables and targets, writes target/bench/results.json (docs/benchmarks.md)
.PHONY: bench bench-http bench-plan
bench:
	scripts/bench.sh all
bench-http:
	scripts/bench.sh http
bench-plan:
	scripts/bench.sh plan

## soak: the release server for SOAK_SECONDS (default 180) under steady HTTP/2 and HTTP/1.1
## load on loopback, with kubelet-style certificate rotation, malformed bodies and slowloris
## clients alongside; prints RSS and open fds every 30 s and fails on any failed review or
## growth (examples/soak.rs, docs/operations.md). Not part of `make test`.
.PHONY: soak fuzz
soak:
	$(CARGO) build --release --bin drain-webhook --example soak
	$(or $(CARGO_TARGET_DIR),target)/release/examples/soak

## fuzz: the cargo-fuzz targets review_body and pod_spec for FUZZ_SECONDS each (default 60;
## needs nightly and cargo-fuzz). `make test` runs the same invariants bounded.
fuzz:
	scripts/fuzz.sh
