#!/usr/bin/env bash
# `make fuzz`: the cargo-fuzz targets (fuzz/), each for FUZZ_SECONDS (default 60), from a
# seed corpus of the real reviews in tests/data/reviews and the pods inside them.
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (cargo install cargo-fuzz). Crashes land in fuzz/artifacts/<target>/; replay one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# The same invariants run bounded on every `make test` (tests/fuzz_bounded.rs).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-review_body pod_spec drain_record}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    echo "fuzz: no $toolchain toolchain (rustup toolchain install $toolchain)" >&2
    exit 2
fi
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi

cd "$root/fuzz"
mkdir -p corpus/review_body corpus/pod_spec corpus/drain_record
# drain_record: a record after the user's own text, and a bare one (src/drain_record).
printf 'panic: boom\n{"v":1,"role":"app","floor":15.000,"end":21.480,"why":"quiet","lastArrival":18.402,"afterFloor":7,"migratedAt":null,"signalAt":21.480,"exit":0}\n' >corpus/drain_record/after-text
printf '{"v":1,"role":"proxy","floor":5.000,"end":65.000,"why":"cap","lastArrival":64.950,"afterFloor":912,"migratedAt":5.000,"signalAt":null,"exit":0}' >corpus/drain_record/capped
for review in "$root"/tests/data/reviews/*.json; do
    name="$(basename "$review" .json)"
    # review_body: a selector byte (cluster version), then the body.
    { printf '\002'; cat "$review"; } >"corpus/review_body/$name"
    # pod_spec: a selector byte, then the review's object (skipped when there is none).
    python3 - "$review" "corpus/pod_spec/$name" <<'PY'
import json, sys
review = json.load(open(sys.argv[1]))
obj = (review.get("request") or {}).get("object")
if isinstance(obj, dict) and obj.get("kind") == "Pod":
    with open(sys.argv[2], "wb") as out:
        out.write(b"\x02" + json.dumps(obj).encode())
PY
done

status=0
for target in $targets; do
    echo "fuzz: $target for ${seconds}s"
    if ! cargo "+$toolchain" fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048; then
        echo "fuzz: $target FAILED (see fuzz/artifacts/$target/)" >&2
        status=1
    fi
done
exit "$status"
