#!/usr/bin/env bash
# How expected-by-jq.json was made: the JSON assembly of scripts/e2e.sh as it was before
# `drain-e2e results` replaced it (commit 16abe2f), with the settings tests/e2e_results.rs
# passes, run on this directory: bash by-jq.sh . >expected-by-jq.json
set -euo pipefail
out=$1
ns_on=drain-e2e-on; ns_off=drain-e2e-plain
version=v1.32.0; restarts=2; lb_delay=15; status_on='planned: proxy helper (hold 10s..60s, quiet 3s) then SIGQUIT; app sleep 15s'
proxy_image=ghcr.io/drain-io/nginx-drain-e2e:0.1.0; app_image=ghcr.io/drain-io/drain-e2e:0.1.0; hook=""; clients=new,keepalive,h2,stream
delay=""; max_delay="0"; profile=""; stream_linger=0
declare -A rollouts
for ns in "$ns_on" "$ns_off"; do rollouts[$ns]="[]"; done
for ns in "$ns_on" "$ns_off"; do
  while read -r t0 t1; do
	rollouts[$ns]=$(jq -c --argjson t0 "$t0" --argjson t1 "$t1" '. + [{started_unix: $t0, seconds: ($t1 - $t0)}]' <<<"${rollouts[$ns]}")
  done <"$out/rollouts-$ns.txt"
done
ready_on="[]"; ready_off="[]"
while read -r t0 t1; do seconds=$(jq -n "$t1 - $t0"); ready_on=$(jq -c --argjson s "$seconds" '. + [$s]' <<<"$ready_on"); done <"$out/ready-$ns_on.txt"
while read -r t0 t1; do seconds=$(jq -n "$t1 - $t0"); ready_off=$(jq -c --argjson s "$seconds" '. + [$s]' <<<"$ready_off"); done <"$out/ready-$ns_off.txt"
jq -n --arg version "$version" --argjson restarts "$restarts" --argjson lb "$lb_delay" \
	--arg on "$ns_on" --arg off "$ns_off" --arg status_on "$status_on" \
	--argjson rollouts_on "${rollouts[$ns_on]}" --argjson rollouts_off "${rollouts[$ns_off]}" \
	--slurpfile load_on "$out/load-$ns_on.json" --slurpfile load_off "$out/load-$ns_off.json" \
	--argjson ready_on "$ready_on" --argjson ready_off "$ready_off" \
	--arg proxy_image "$proxy_image" --arg app_image "$app_image" --arg hook "${hook:-auto}" \
	--arg clients "$clients" --arg delay "$delay" --arg max_delay "$max_delay" --arg profile "${profile:-none}" \
	--argjson stream_linger "$stream_linger" \
	--slurpfile holds_on "$out/holds-$ns_on.json" --slurpfile holds_off "$out/holds-$ns_off.json" \
	'{kubernetes_version: $version, restarts: $restarts, lb_delay_seconds: $lb,
	  demo: {proxy_image: $proxy_image, app_image: $app_image, hook_annotation: $hook, plan: $status_on,
	         clients: $clients, delay_annotation: $delay, max_delay_annotation: $max_delay, profile: $profile, stream_linger_seconds: $stream_linger},
	  namespaces: [
	    {name: $on, injected: true, rollouts: $rollouts_on, load: $load_on[0], holds: $holds_on[0]},
	    {name: $off, injected: false, rollouts: $rollouts_off, load: $load_off[0], holds: $holds_off[0]}],
	  create_to_ready_seconds: {injected: $ready_on, plain: $ready_off}}'
