# Every CI step is a make target; .ci/run calls `make deps` then `make test`
# (`test` also runs `deps`, which is idempotent, so `make test` works on a fresh machine).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test deps fmt-check clippy cargo-test run

## test: formatting, lints and every test (what CI runs)
test: deps fmt-check clippy deny cargo-test helper-check images-check

## deps: install what the tests need on a fresh machine (idempotent)
# `cargo fetch` downloads the crates of every platform in Cargo.lock: builds fetch only the
# host's, but cargo-deny (run --offline) reads them all (valuable, anstyle-wincon, ...).
deps:
	scripts/install-tools.sh
	scripts/install-cargo-deny.sh
	$(CARGO) fetch --locked

## deny: licenses, duplicate versions and sources of every dependency (deny.toml; offline:
## advisories need a database fetch this machine cannot make)
.PHONY: deny
deny:
	.tools/bin/cargo-deny --offline --locked check licenses bans sources

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
# (panic = "abort" never unwinds), identical code folded: together about 60 KiB; and the unwind
# and landing-pad tables of glibc, libgcc and std discarded by a linker script, 76 KiB more.
# Static glibc: every binary that goes into an image is built with STATIC_RUSTFLAGS and
# --target $(HOST_TRIPLE), which keeps it in its own target dir (the normal builds stay warm).
STATIC_RUSTFLAGS = -C target-feature=+crt-static
HELPER_SIZE_RUSTFLAGS = $(STATIC_RUSTFLAGS) -C relocation-model=static \
	-C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr \
	-C link-arg=-Wl,-T,$(CURDIR)/scripts/helper-discard-unwind.ld
# --icf=all is a flag of lld, x86_64's default linker since Rust 1.90; the arm64 build links
# with Debian's GNU ld, which has no ICF (gold's saves nothing there: docs/decisions.md).
HELPER_RUSTFLAGS = $(HELPER_SIZE_RUSTFLAGS) -C link-arg=-Wl,--icf=all
HOST_TRIPLE = $(shell rustc -vV | sed -n 's/^host: //p')
TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
HELPER_BIN = $(TARGET_DIR)/$(HOST_TRIPLE)/helper/drain-helper
.PHONY: helper helper-check
helper:
	RUSTFLAGS="$(HELPER_RUSTFLAGS)" $(CARGO) build --profile helper --no-default-features --bin drain-helper --target $(HOST_TRIPLE)
	@echo $(HELPER_BIN)

## helper-check: the helper is static, under 1 MiB, and installs itself in an empty chroot,
## for the host and for linux/arm64 (under qemu-aarch64-static)
helper-check: helper helper-arm64
	scripts/check-helper.sh $(HELPER_BIN)
	scripts/check-helper.sh $(ARM64_HELPER_BIN)

# linux/arm64: cross-compiled on the (x86_64) build machine with Debian's gcc-aarch64-linux-gnu
# as linker and C compiler (ring's C and assembly) and libc6-dev-arm64-cross's static glibc;
# scripts/install-tools.sh installs both and rustup's aarch64-unknown-linux-gnu std. Through
# the environment, so no .cargo/config changes anyone else's builds (docs/decisions.md).
ARM64_TRIPLE = aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER ?= aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu ?= aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu ?= aarch64-linux-gnu-ar
ARM64_HELPER_RUSTFLAGS = $(HELPER_SIZE_RUSTFLAGS)
ARM64_HELPER_BIN = $(TARGET_DIR)/$(ARM64_TRIPLE)/helper/drain-helper
ARM64_STATIC_BIN_DIR = $(TARGET_DIR)/$(ARM64_TRIPLE)/release
.PHONY: helper-arm64 static-arm64
## helper-arm64 / static-arm64: `make helper` / `make static` for linux/arm64; print the paths
helper-arm64:
	RUSTFLAGS="$(ARM64_HELPER_RUSTFLAGS)" $(CARGO) build --profile helper --no-default-features --bin drain-helper --target $(ARM64_TRIPLE)
	@echo $(ARM64_HELPER_BIN)

## images: the images as OCI archives in target/images/ (no daemon, registry or base image;
## docs/proof.md), each an image index of linux/amd64 and linux/arm64: drain-webhook and
## drain-helper, named as the chart's defaults, and the test-only drain-e2e (twice: also as
## nginx-drain-e2e) that `make e2e` runs. Load with `kind load image-archive FILE`,
## `ctr -n k8s.io images import --all-platforms FILE`, `podman load -i FILE` or
## `skopeo copy --all oci-archive:FILE ...` (docs/install.md, "Loading the image archives").
# The tag is the chart's appVersion (what values.yaml defaults to); the version label is the
# crate's. Override IMAGE_REPOSITORY / IMAGE_TAG, or each *_IMAGE, to push elsewhere.
CRATE_VERSION = $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
IMAGE_REPOSITORY ?= ghcr.io/drain-io
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/drain-webhook/Chart.yaml)
WEBHOOK_IMAGE ?= $(IMAGE_REPOSITORY)/drain-webhook:$(IMAGE_TAG)
HELPER_IMAGE ?= $(IMAGE_REPOSITORY)/drain-helper:$(IMAGE_TAG)
E2E_IMAGE ?= $(IMAGE_REPOSITORY)/drain-e2e:$(IMAGE_TAG)
# The same drain-e2e image under an nginx-family name: the planner gives it exactly what it
# gives nginx (the helper, SIGQUIT after the delay), so `make e2e` exercises that path.
E2E_NGINX_IMAGE ?= $(IMAGE_REPOSITORY)/nginx-drain-e2e:$(IMAGE_TAG)
IMAGES_DIR = $(TARGET_DIR)/images
STATIC_BIN_DIR = $(TARGET_DIR)/$(HOST_TRIPLE)/release
export IMAGE_VERSION = $(CRATE_VERSION)
export IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# NAME=REFERENCE=amd64:BINARY,arm64:BINARY=ENTRYPOINT,CMD...=PORTS=STOPSIGNAL
# (scripts/build-images.sh): every archive is an image index of linux/amd64 and linux/arm64.
# The webhook drains on SIGTERM itself; drain-e2e's proxy mode is graceful on SIGQUIT, like
# the official nginx image, and its other modes stop at once on either signal.
platform_bins = amd64:$(STATIC_BIN_DIR)/$(1),arm64:$(ARM64_STATIC_BIN_DIR)/$(1)
IMAGE_SPECS = \
	drain-webhook=$(WEBHOOK_IMAGE)=$(call platform_bins,drain-webhook)=/drain-webhook,serve=8443,8080=SIGTERM \
	drain-helper=$(HELPER_IMAGE)=amd64:$(HELPER_BIN),arm64:$(ARM64_HELPER_BIN)=/drain-helper \
	drain-e2e=$(E2E_IMAGE)=$(call platform_bins,drain-e2e)=/drain-e2e==SIGQUIT \
	drain-e2e-nginx=$(E2E_NGINX_IMAGE)=$(call platform_bins,drain-e2e)=/drain-e2e==SIGQUIT
.PHONY: images images-check static
## static: the webhook and drain-e2e (STATIC_BINS), static, release profile (what the images
## ship); prints their paths (the Dockerfile copies from there)
STATIC_BINS ?= drain-webhook drain-e2e
static:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release $(addprefix --bin ,$(STATIC_BINS)) --target $(HOST_TRIPLE)
	@for bin in $(STATIC_BINS); do echo $(STATIC_BIN_DIR)/$$bin; done
static-arm64:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release $(addprefix --bin ,$(STATIC_BINS)) --target $(ARM64_TRIPLE)
	@for bin in $(STATIC_BINS); do echo $(ARM64_STATIC_BIN_DIR)/$$bin; done
# The host's builds are the amd64 images (`helper`, `static`), so images are built on x86_64
# (checked first, before any build).
.PHONY: images-host
images-host:
	@[ "$(HOST_TRIPLE)" = x86_64-unknown-linux-gnu ] || { echo "make images: builds on x86_64 only (linux/amd64 natively, linux/arm64 cross-compiled); this host is $(HOST_TRIPLE)" >&2; exit 1; }
images: images-host helper static helper-arm64 static-arm64
	scripts/build-images.sh $(IMAGES_DIR) $(IMAGE_SPECS)

## images-check: each archive is a valid OCI layout with the right config, is rebuilt to the
## same bytes, and its binary runs in an empty root (scripts/check-images.sh)
# Overridden names (environment or command line) need not be the chart's defaults.
IMAGE_NAMES_OVERRIDDEN = $(if $(filter-out file,$(foreach v,IMAGE_REPOSITORY IMAGE_TAG WEBHOOK_IMAGE HELPER_IMAGE,$(origin $(v)))),1)
images-check: images
	IMAGE_NAMES_OVERRIDDEN=$(IMAGE_NAMES_OVERRIDDEN) scripts/check-images.sh $(IMAGES_DIR) $(IMAGE_SPECS)

## e2e: the proof against the cluster in KUBECONFIG (docs/proof.md): the chart from the
## images, a demo in an opted-in and a plain namespace, load through the Service and an
## emulated slow load balancer during rolling restarts; fails when the opted-in namespace
## loses a request. Load the images into the node first (or E2E_LOAD=kind|ctr). Not in `test`.
.PHONY: e2e
e2e: deps images
	IMAGES_DIR=$(IMAGES_DIR) WEBHOOK_IMAGE=$(WEBHOOK_IMAGE) HELPER_IMAGE=$(HELPER_IMAGE) \
		E2E_IMAGE=$(E2E_IMAGE) E2E_NGINX_IMAGE=$(E2E_NGINX_IMAGE) E2E_BIN=$(STATIC_BIN_DIR)/drain-e2e \
		WEBHOOK_BIN=$(STATIC_BIN_DIR)/drain-webhook scripts/e2e.sh

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

## fuzz: the cargo-fuzz targets review_body, pod_spec and drain_record for FUZZ_SECONDS each (default 60;
## needs nightly and cargo-fuzz). `make test` runs the same invariants bounded.
fuzz:
	scripts/fuzz.sh
