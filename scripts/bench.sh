#!/usr/bin/env bash
# `make bench`: drain-webhook against its floor, and the planner alone. See docs/benchmarks.md.
#
#   1. installs h2load (scripts/install-bench-tools.sh, idempotent);
#   2. builds the release server and the baseline (examples/baseline_server.rs), timed;
#   3. benches/http.rs: both servers on free loopback ports, startup to /readyz, h2load runs
#      per pod shape (closed loop and paced at 1,000/s), peak RSS;
#   4. benches/plan.rs (criterion): mutate_pod and Reviewer::review per shape;
#   5. prints the tables and the targets, writes target/bench/results.json.
#
# Usage: scripts/bench.sh [all|http|plan]    (default: all)
# Knobs (environment): DRAIN_BENCH_REQUESTS, DRAIN_BENCH_WIDE_REQUESTS, DRAIN_BENCH_CONNECTIONS,
# DRAIN_BENCH_STREAMS, DRAIN_BENCH_ROUNDS, DRAIN_BENCH_RATE, DRAIN_BENCH_PACED_SECONDS,
# CRITERION_SECONDS.
set -euo pipefail

what="${1:-all}"
case "$what" in all | http | plan) ;; *)
    echo "usage: $0 [all|http|plan]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CARGO="${CARGO:-cargo}"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench"
mkdir -p "$out"
export DRAIN_BENCH_OUT="$out"
started=$(date +%s)

# h2load and jq (Debian packages nghttp2-client and jq).
scripts/install-bench-tools.sh

# ---------------------------------------------------------------------------------------------
# Build (release settings). The first build compiles every dependency; later ones are incremental.
first_build=false
[[ -x "$target/release/drain-webhook" ]] || first_build=true
build_started=$(date +%s%N)
# The `bench` profile is the release profile under another name; building the server with it
# lets `cargo bench` reuse the same compiled library instead of building it a second time. One
# invocation for the two servers and the two bench binaries keeps both cores busy throughout.
$CARGO build --profile bench --bin drain-webhook --example baseline_server --bench http --bench plan
build_ms=$((($(date +%s%N) - build_started) / 1000000))
echo "bench: release build $((build_ms / 1000)).$((build_ms % 1000 / 100)) s (first build: $first_build)"

# ---------------------------------------------------------------------------------------------
# HTTP: server vs baseline.
if [[ "$what" != plan ]]; then
    rm -f "$out/http.json"
    DRAIN_BENCH_SERVER="$target/release/drain-webhook" \
        DRAIN_BENCH_BASELINE="$target/release/examples/baseline_server" \
        $CARGO bench --bench http -- --bench
fi

# ---------------------------------------------------------------------------------------------
# The planner alone (criterion).
seconds="${CRITERION_SECONDS:-2}"
if [[ "$what" != http ]]; then
    $CARGO bench --bench plan -- --warm-up-time 1 --measurement-time "$seconds" --noplot
fi

# ---------------------------------------------------------------------------------------------
# Summary: criterion estimates as ns per pod and per byte, the targets, results.json.
criterion="$target/criterion"
plan_json='[]'
for group in mutate_pod review; do
    for shape in small seed wide; do
        dir="$criterion/$group/$shape/new"
        [[ -f "$dir/estimates.json" ]] || continue
        plan_json=$(jq -c --arg group "$group" --arg shape "$shape" \
            --slurpfile est "$dir/estimates.json" --slurpfile bm "$dir/benchmark.json" \
            '. + [{group: $group, shape: $shape,
                   bytes: $bm[0].throughput.Bytes,
                   ns: ($est[0].mean.point_estimate | round),
                   ns_per_byte: (($est[0].mean.point_estimate / $bm[0].throughput.Bytes) * 1000 | round / 1000)}]' \
            <<<"$plan_json")
    done
done

http_json='null'
[[ -f "$out/http.json" ]] && http_json=$(cat "$out/http.json")

jq -n \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --argjson build_ms "$build_ms" \
    --argjson first_build "$first_build" \
    --argjson http "$http_json" \
    --argjson plan "$plan_json" \
    '{date: $date, commit: $commit,
      release_build: {seconds: ($build_ms / 100 | round / 10), first_build: $first_build},
      http: $http, plan: $plan}' >"$out/results.json.tmp"

# Targets (docs/benchmarks.md); a missed target is reported, not fatal.
jq '. + {targets: (
    [ (.http // empty | .shapes[] | {target: "throughput >= 0.8 x baseline (\(.shape))",
                                  value: .throughput_ratio, met: (.throughput_ratio >= 0.8)}),
      (.http // empty | .shapes[] | select(.shape == "seed")
        | {target: "p99 at 1000/s < 2 ms (seed)", value: .server.paced.p99_ms,
           met: (.server.paced.p99_ms < 2)}),
      (.http // empty | {target: "peak RSS under load < 40 MiB", value: .peak_rss_mib.server,
                         met: (.peak_rss_mib.server < 40)}),
      (.http // empty | {target: "ready within 200 ms (no cluster)", value: .startup_ms.server,
                         met: (.startup_ms.server < 200)}),
      (.plan[] | select(.group == "mutate_pod" and .shape == "seed")
        | {target: "planner < 20 us per seed pod", value: (.ns / 1000), met: (.ns < 20000)}),
      ([.plan[] | select(.group == "mutate_pod")] as $p
        | ($p | map(select(.shape == "small"))[0]) as $small
        | ($p | map(select(.shape == "wide"))[0]) as $wide
        | select($small and $wide)
        | {target: "wide costs no more per byte than small (ns/byte)",
           value: "\($wide.ns_per_byte) vs \($small.ns_per_byte)",
           met: ($wide.ns_per_byte <= $small.ns_per_byte)})
    ])}' "$out/results.json.tmp" >"$out/results.json"
rm -f "$out/results.json.tmp"

echo
if [[ "$plan_json" != '[]' ]]; then
    echo "Planner (criterion means; bytes of the pod JSON for mutate_pod, of the whole review for review):"
    echo
    echo "| group | shape | bytes | time per pod | ns per byte |"
    echo "| --- | --- | ---: | ---: | ---: |"
    jq -r '.plan[] | "| \(.group) | \(.shape) | \(.bytes) | \(.ns / 1000 * 10 | round / 10) µs | \(.ns_per_byte) |"' "$out/results.json"
    echo
fi
echo "Targets:"
jq -r '.targets[] | "  [\(if .met then "met   " else "MISSED" end)] \(.target): \(.value)"' "$out/results.json"
echo
echo "bench: wrote $out/results.json in $(($(date +%s) - started)) s"
