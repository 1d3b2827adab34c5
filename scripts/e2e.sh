#!/usr/bin/env bash
# make e2e: the proof (docs/proof.md), against the cluster KUBECONFIG points at. Installs the
# chart from the images `make images` wrote (self-managed certificates), deploys the demo
# (a proxy in front of an app in one pod, 3 replicas, a Service) into an opted-in and a plain
# namespace, runs load from a pod in each along two paths (the Service's ClusterIP, and an
# emulated load balancer L seconds late on the EndpointSlices) in each client mode
# (E2E_CLIENTS: new connections, keep-alive, HTTP/2, streams), rolls the demo N times while
# it keeps every terminating pod's proxy log (the helper's hold and signal lines), measures
# create-to-Ready with and without injection, prints the tables, writes
# target/e2e/results.json and results.svg. Fails when the opted-in namespace loses a request
# or a stream message, or has a stream cut, or when the drains the webhook observed (its
# GET /drains, through the service proxy) disagree with the holds the proxy logs show.
# Everything it creates is deleted on exit, also on Ctrl-C (E2E_KEEP=1 keeps it).
#
# Needs no cluster DNS and no registry: every image is one `make images` wrote, imported into
# the node beforehand (or by E2E_LOAD=kind|ctr), and pulled IfNotPresent.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
kubectl=${KUBECTL:-$root/.tools/bin/kubectl}
helm=${HELM:-$root/.tools/bin/helm}
report_bin=${E2E_BIN:?set E2E_BIN to a drain-e2e binary for the host (make e2e does)}
webhook_bin=${WEBHOOK_BIN:?set WEBHOOK_BIN to a drain-webhook binary for the host (make e2e does)}
images_dir=${IMAGES_DIR:-$root/target/images}
webhook_image=${WEBHOOK_IMAGE:?set WEBHOOK_IMAGE (make e2e does)}
helper_image=${HELPER_IMAGE:?set HELPER_IMAGE (make e2e does)}
e2e_image=${E2E_IMAGE:?set E2E_IMAGE (make e2e does)}
nginx_image=${E2E_NGINX_IMAGE:?set E2E_NGINX_IMAGE (make e2e does)}
proxy_image=${E2E_PROXY_IMAGE:-$nginx_image}
app_image=${E2E_APP_IMAGE:-$e2e_image}
pull_policy=${E2E_PULL_POLICY:-IfNotPresent}
lb_delay=${E2E_LB_DELAY:-15}
restarts=${E2E_RESTARTS:-2}
rate=${E2E_RATE:-50}
ready_samples=${E2E_READY_SAMPLES:-5}
hook=${E2E_HOOK:-}
# The adaptive hold replaces the auto profile: a lagging load balancer is held for by default.
profile=${E2E_PROFILE:-none}
clients=${E2E_CLIENTS:-new,keepalive,h2,stream}
streams=${E2E_STREAMS:-10}
delay=${E2E_DELAY:-}
max_delay=${E2E_MAX_DELAY:-}
stream_linger=${E2E_STREAM_LINGER:-0}
# The demo proxy's readiness probe period (its only probe; the helper discounts it as
# forwarded to the app too): issue 30 measures slow traffic against 10 s probes.
probe_period=${E2E_PROBE_PERIOD:-1}
load=${E2E_LOAD:-none}
prefix=${E2E_PREFIX:-drain-e2e}
out=${E2E_OUT:-$root/target/e2e}

system_ns=$prefix-system
ns_on=$prefix-on
ns_off=$prefix-plain
release=drain-webhook-e2e

log() { echo "e2e: $*" >&2; }
die() {
	echo "e2e: FAIL: $*" >&2
	exit 1
}

[[ "$lb_delay" =~ ^[0-9]+$ ]] || die "E2E_LB_DELAY=$lb_delay: give whole seconds, e.g. 5"
[[ "$restarts" =~ ^[1-9][0-9]*$ ]] || die "E2E_RESTARTS=$restarts: give a whole number >= 1"
[[ "$rate" =~ ^[1-9][0-9]*$ ]] || die "E2E_RATE=$rate: give requests per second per path, e.g. 50"
[[ "$ready_samples" =~ ^[0-9]+$ ]] || die "E2E_READY_SAMPLES=$ready_samples: give a whole number"
case "$pull_policy" in IfNotPresent | Never) ;; *) die "E2E_PULL_POLICY=$pull_policy: use IfNotPresent or Never (the cluster has no registry)" ;; esac
[[ "$profile" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "E2E_PROFILE=$profile: give auto, none or a profile name (docs/profiles.md), e.g. azure-lb"
case "$hook" in "" | auto | sleep | helper) ;; *) die "E2E_HOOK=$hook: use auto, sleep or helper (the drain.io/hook annotation)" ;; esac
[[ "$clients" =~ ^(new|keepalive|h2|stream)(,(new|keepalive|h2|stream))*$ ]] || die "E2E_CLIENTS=$clients: give a comma list of new, keepalive, h2, stream"
[[ "$streams" =~ ^[1-9][0-9]*$ ]] || die "E2E_STREAMS=$streams: give streams per path, e.g. 10"
[[ -z "$delay" || "$delay" =~ ^[0-9]+$ ]] || die "E2E_DELAY=$delay: give whole seconds (drain.io/delay), e.g. 2"
[[ -z "$max_delay" || "$max_delay" =~ ^[0-9]+$ ]] || die "E2E_MAX_DELAY=$max_delay: give whole seconds (drain.io/max-delay; 0 makes every hold the fixed D), e.g. 0"
[[ "$probe_period" =~ ^[1-9][0-9]*$ ]] || die "E2E_PROBE_PERIOD=$probe_period: give whole seconds >= 1 (the demo's probe periodSeconds), e.g. 10"
[[ "$stream_linger" =~ ^[0-9]+$ ]] || die "E2E_STREAM_LINGER=$stream_linger: give whole seconds the app keeps its streams after SIGTERM, e.g. 0"
for tool in "$kubectl" "$helm" "$report_bin" "$webhook_bin"; do
	[ -x "$tool" ] || die "$tool is missing: run make deps and make images"
done
command -v jq >/dev/null || die "jq is missing: run make deps"

# repository and tag of a reference (the chart takes them apart).
repo_of() { echo "${1%:*}"; }
tag_of() { echo "${1##*:}"; }

k() { "$kubectl" "$@"; }

# --- The demo: proxy in front of the app, 3 replicas, a Service.
security='securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            runAsGroup: 65532
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: ["ALL"]}
            seccompProfile: {type: RuntimeDefault}'
hook_annotation=""
[ -z "$hook" ] || hook_annotation="drain.io/hook: $hook"
# E2E_PROFILE=none (the default): the adaptive hold alone covers the emulated load balancer's
# lag. E2E_PROFILE=auto: with L at or above the default D (10 s) it gets a profile of its own,
# defined through the chart's settings.profiles (--profiles-file), with a floor of L + 5 s.
default_delay=10
profiles_json='[]'
case "$profile" in
auto)
	profile=""
	if [ "$lb_delay" -ge "$default_delay" ]; then
		profile=e2e-emulated-lb
	fi
	;;
none) profile="" ;;
esac
if [ "$profile" = e2e-emulated-lb ]; then
	profiles_json=$(printf '[{"name":"e2e-emulated-lb","delayFloor":%d,"note":"the drain-e2e load balancer, %d s behind the EndpointSlices (E2E_LB_DELAY), plus 5 s"}]' $((lb_delay + 5)) "$lb_delay")
fi
profile_annotation=""
[ -z "$profile" ] || profile_annotation="drain.io/profile: $profile"
# E2E_DELAY: D for the opted-in pods, e.g. 2 to compare the adaptive hold with a fixed 10 s.
delay_annotation=""
[ -z "$delay" ] || delay_annotation="drain.io/delay: \"${delay}s\""
# E2E_MAX_DELAY: M for the opted-in pods; 0 (at or below D) makes the hold the fixed D.
max_delay_annotation=""
[ -z "$max_delay" ] || max_delay_annotation="drain.io/max-delay: \"${max_delay}s\""
# The pod template, also used alone for the create-to-Ready samples. The proxy is named by
# drain.io/proxies (works for any image; its nginx-family image name is what gets it the
# helper and SIGQUIT); the app gets no probe, it listens on localhost only.
pod_spec() {
	cat <<EOF
      containers:
        - name: proxy
          image: $proxy_image
          imagePullPolicy: $pull_policy
          args: ["proxy", "--listen", "0.0.0.0:8080", "--upstream", "127.0.0.1:8081"]
          env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: $probe_period
            failureThreshold: 1
          $security
        - name: app
          image: $app_image
          imagePullPolicy: $pull_policy
          args: ["app", "--listen", "127.0.0.1:8081", "--stream-linger", "${stream_linger}s"]
          env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          $security
EOF
}
demo() {
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo, namespace: $1}
spec:
  replicas: 3
  selector: {matchLabels: {app: demo}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels: {app: demo}
      annotations:
        drain.io/proxies: proxy
        $hook_annotation
        $profile_annotation
        $delay_annotation
        $max_delay_annotation
    spec:
$(pod_spec)
---
apiVersion: v1
kind: Service
metadata: {name: demo, namespace: $1}
spec:
  selector: {app: demo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: load, namespace: $1}
---
# The load client's only API access: the demo's EndpointSlices in this namespace.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: load, namespace: $1}
rules:
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: load, namespace: $1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: load}
subjects: [{kind: ServiceAccount, name: load, namespace: $1}]
EOF
}
# `scripts/e2e.sh --print-demo NAMESPACE`: the demo's manifests, touching no cluster
# (tests/e2e_script.rs checks what the webhook makes of them).
if [ "${1:-}" = --print-demo ]; then
	demo "${2:?usage: scripts/e2e.sh --print-demo NAMESPACE}"
	exit 0
fi
# `scripts/e2e.sh --print-profiles`: the --profiles-file the chart gets (tests/e2e_script.rs).
if [ "${1:-}" = --print-profiles ]; then
	printf '{"profiles": %s}\n' "$profiles_json"
	exit 0
fi
[ -z "$profile" ] || log "demo pods in the opted-in namespace name drain.io/profile: $profile"

# --- Cleanup: only what this run created, also when interrupted.
created_namespaces=()
capture_pids=()
helm_installed=false
cleanup() {
	local rc=$?
	set +e
	for pid in "${capture_pids[@]}"; do kill "$pid" 2>/dev/null; done
	if [ "${E2E_KEEP:-}" = 1 ]; then
		log "E2E_KEEP=1: leaving namespaces ${created_namespaces[*]} and release $release in place"
		exit "$rc"
	fi
	log "cleaning up"
	# The demo namespaces, then the release (and its cluster-wide webhook configuration), then
	# the release's namespace, which the self-managed Secret lives in.
	for ns in "${created_namespaces[@]}"; do
		[ "$ns" = "$system_ns" ] || k delete namespace "$ns" --wait=false >/dev/null 2>&1
	done
	if $helm_installed; then "$helm" uninstall "$release" -n "$system_ns" --wait >/dev/null 2>&1; fi
	for ns in "${created_namespaces[@]}"; do
		k delete namespace "$ns" --wait=false >/dev/null 2>&1
	done
	for ns in "${created_namespaces[@]}"; do
		k wait --for=delete "namespace/$ns" --timeout=180s >/dev/null 2>&1 ||
			log "namespace $ns is still being deleted"
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- Cluster and images.
version=$(k version -o json | jq -r '.serverVersion.gitVersion') || die "cannot reach the cluster in KUBECONFIG (${KUBECONFIG:-~/.kube/config})"
log "cluster: kubernetes $version"
case "$load" in
none) log "images: expecting $webhook_image, $helper_image, $e2e_image and $nginx_image on the node (docs/proof.md: load them first, or set E2E_LOAD=kind|ctr)" ;;
kind)
	for a in drain-webhook drain-helper drain-e2e drain-e2e-nginx; do kind load image-archive "$images_dir/$a.oci.tar" ${KIND_CLUSTER:+--name "$KIND_CLUSTER"}; done
	;;
ctr)
	for a in drain-webhook drain-helper drain-e2e drain-e2e-nginx; do ctr -n k8s.io images import "$images_dir/$a.oci.tar"; done
	;;
*) die "E2E_LOAD=$load: use none, kind (kind load image-archive) or ctr (on the node, ctr -n k8s.io images import)" ;;
esac

for ns in "$system_ns" "$ns_on" "$ns_off"; do
	if k get namespace "$ns" >/dev/null 2>&1; then
		die "namespace $ns exists already: delete it (kubectl delete namespace $ns) or set E2E_PREFIX"
	fi
done
if "$helm" status "$release" -n "$system_ns" >/dev/null 2>&1; then die "helm release $release exists already"; fi

mkdir -p "$out"
rm -f "$out/results.json" "$out/results.svg"
# What `drain-e2e results` reads besides the load and holds: one `START END` line (seconds
# since 1970) per rolling restart and per create-to-Ready sample.
for ns in "$ns_on" "$ns_off"; do
	: >"$out/rollouts-$ns.txt"
	: >"$out/ready-$ns.txt"
done

make_namespace() {
	k create namespace "$1" >/dev/null
	created_namespaces+=("$1")
	# Everything here passes Pod Security "restricted", the demo and the injected parts too.
	k label namespace "$1" pod-security.kubernetes.io/enforce=restricted "${@:2}" >/dev/null
}

# --- The webhook, from the images, self-managed certificates (no cert-manager needed).
make_namespace "$system_ns"
log "installing the chart into $system_ns"
helm_installed=true
"$helm" install "$release" "$root/charts/drain-webhook" -n "$system_ns" \
	--set certificates.mode=self-managed \
	--set image.repository="$(repo_of "$webhook_image")" --set image.tag="$(tag_of "$webhook_image")" \
	--set image.pullPolicy="$pull_policy" \
	--set settings.helper.image.repository="$(repo_of "$helper_image")" \
	--set settings.helper.image.tag="$(tag_of "$helper_image")" \
	--set settings.helper.image.pullPolicy="$pull_policy" \
	--set-json "settings.profiles=$profiles_json" \
	--wait --timeout 5m >/dev/null || {
	k -n "$system_ns" get pods -o wide >&2
	k -n "$system_ns" describe pods >&2
	die "the webhook did not become Ready (see the pods above; ErrImageNeverPull or ImagePullBackOff: the images are not on the node)"
}
make_namespace "$ns_on" drain.io/inject=enabled
make_namespace "$ns_off"
# Before any demo pod: with failurePolicy Ignore, a pod created while the webhook is not yet
# reachable (caBundle not patched in, Service not programmed by kube-proxy) passes unmutated.
# check waits until a dry-run Pod in the opted-in namespace comes back planned.
check_out=$("$webhook_bin" check -n "$ns_on" --webhook-configuration-name "$release" --wait 2m 2>&1) ||
	die "drain-webhook check never passed:
$check_out"
log "webhook checked: a dry-run pod in $ns_on is planned"

# --- The demo in both namespaces.
for ns in "$ns_on" "$ns_off"; do demo "$ns" | k apply -f - >/dev/null; done
for ns in "$ns_on" "$ns_off"; do
	k -n "$ns" rollout status deploy/demo --timeout=180s >/dev/null ||
		{ k -n "$ns" describe pods -l app=demo >&2; die "the demo in $ns did not become Ready"; }
done
# The webhook must have planned the opted-in pods, and only those.
status_on=$(k -n "$ns_on" get pods -l app=demo -o jsonpath='{.items[0].metadata.annotations.drain\.io/status}')
status_off=$(k -n "$ns_off" get pods -l app=demo -o jsonpath='{.items[0].metadata.annotations.drain\.io/status}')
[ -n "$status_on" ] || die "the demo pods in $ns_on carry no drain.io/status: the API server did not reach the webhook"
[ -z "$status_off" ] || die "the demo pods in $ns_off were mutated, but that namespace is not opted in"
log "demo Ready in both namespaces; $ns_on planned: $status_on"

# --- Load, from a pod in each namespace (the host may not reach pod IPs).
start_load() {
	local ns=$1 ip
	ip=$(k -n "$ns" get service demo -o jsonpath='{.spec.clusterIP}')
	cat <<EOF | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: load
  namespace: $ns
  annotations: {drain.io/inject: "false"}
spec:
  serviceAccountName: load
  restartPolicy: Never
  containers:
    - name: load
      image: $e2e_image
      imagePullPolicy: $pull_policy
      args: ["load", "--service", "$ip:80", "--lb-service", "demo", "--lb-port", "8080",
             "--lb-delay", "${lb_delay}s", "--rate", "$rate", "--clients", "$clients",
             "--streams", "$streams"]
      env:
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
      $security
EOF
}
for ns in "$ns_on" "$ns_off"; do start_load "$ns"; done
for ns in "$ns_on" "$ns_off"; do
	for _ in $(seq 120); do
		k -n "$ns" logs load 2>/dev/null | grep -q 'lb starts with' && break
		sleep 1
	done
	k -n "$ns" logs load 2>/dev/null | grep -q 'lb starts with' ||
		{ k -n "$ns" describe pod load >&2; die "the load client in $ns did not start (see above)"; }
done
log "load running: modes $clients, $rate requests/s per path per request mode, $streams streams per path, per namespace, demo probe every ${probe_period}s; steady for 10 s first"

# --- What each terminating pod's proxy container logs (the helper's hold and signal lines,
# the proxy's own stop signal) vanishes with the pod: follow every demo pod's log from its
# start, and watch the pods' deletion times (API server clock) into a file.
capture() {
	local ns=$1 dir=$out/logs/$1 pod
	local -A following=()
	mkdir -p "$dir"
	trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
	k -n "$ns" get pods -l app=demo --watch -o json >"$out/pods-$ns.watch" 2>/dev/null &
	while :; do
		for pod in $(k -n "$ns" get pods -l app=demo -o jsonpath='{.items[*].metadata.name}' 2>/dev/null); do
			# Started once its log has a line; retried while the container has not started.
			[ -s "$dir/$pod.log" ] && continue
			if [ -n "${following[$pod]:-}" ] && kill -0 "${following[$pod]}" 2>/dev/null; then continue; fi
			k -n "$ns" logs -f "$pod" -c proxy >"$dir/$pod.log" 2>/dev/null &
			following[$pod]=$!
		done
		sleep 1 &
		wait $!
	done
}
capture_pids=()
for ns in "$ns_on" "$ns_off"; do
	rm -rf "$out/logs/$ns"
	capture "$ns" &
	capture_pids+=($!)
done
sleep 10

# No demo pod left terminating, then L + 5 s for the slow load balancer to catch up.
settle() {
	local ns=$1
	for _ in $(seq 300); do
		[ "$(k -n "$ns" get pods -l app=demo -o json | jq '[.items[] | select(.metadata.deletionTimestamp)] | length')" = 0 ] && break
		sleep 1
	done
}
for i in $(seq "$restarts"); do
	log "rolling restart $i of $restarts in both namespaces"
	pids=()
	for ns in "$ns_on" "$ns_off"; do
		(
			t0=$(date +%s.%N)
			k -n "$ns" rollout restart deploy/demo >/dev/null
			k -n "$ns" rollout status deploy/demo --timeout=600s >/dev/null
			t1=$(date +%s.%N)
			echo "$t0 $t1" >>"$out/rollouts-$ns.txt"
		) &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid" || die "a rollout did not finish"; done
	for ns in "$ns_on" "$ns_off"; do
		settle "$ns"
	done
	sleep $((lb_delay + 5))
done

# --- Stop the capture and read each terminated pod's hold (drain-e2e holds).
for pid in "${capture_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${capture_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
capture_pids=()
for ns in "$ns_on" "$ns_off"; do
	# The watch's last object may be cut off when it is stopped: jq keeps what precedes it.
	jq -c 'select(.metadata.deletionTimestamp != null) | {pod: .metadata.name, deletion_timestamp: .metadata.deletionTimestamp, grace_seconds: .metadata.deletionGracePeriodSeconds}' \
		"$out/pods-$ns.watch" >"$out/pods-$ns.jsonl" 2>/dev/null || true
	"$report_bin" holds "$out/logs/$ns" --pods "$out/pods-$ns.jsonl" >"$out/holds-$ns.json" ||
		die "cannot read the pods' logs in $out/logs/$ns"
done

# --- What the webhook observed (issue 28): the leader's GET /drains through the API server's
# service proxy, as `drain-webhook audit` reads it. Each request goes to a replica at random
# and only the leader has the aggregates: a few answers, one per line, from which
# `drain-e2e results` takes the leader's and checks it against the holds.
drains_path="/api/v1/namespaces/$system_ns/services/http:$release:admin/proxy/drains"
: >"$out/drains.jsonl"
: >"$out/drains.err"
for _ in 1 2 3 4 5 6; do
	if answer=$(k get --raw "$drains_path" 2>>"$out/drains.err"); then
		printf '%s\n' "$answer" >>"$out/drains.jsonl"
	fi
done
"$webhook_bin" audit -n "$ns_on" --webhook-configuration-name "$release" >"$out/audit-$ns_on.txt" 2>&1 ||
	log "drain-webhook audit -n $ns_on failed: see $out/audit-$ns_on.txt"

# --- Stop the load and collect its counts.
for ns in "$ns_on" "$ns_off"; do k -n "$ns" exec load -- /drain-e2e stop; done
for ns in "$ns_on" "$ns_off"; do
	k -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/load --timeout=120s >/dev/null ||
		die "the load client in $ns did not finish"
	k -n "$ns" logs load | sed -n 's/^{"drain_e2e_summary":\(.*\)}$/\1/p' >"$out/load-$ns.json"
	[ -s "$out/load-$ns.json" ] || die "the load client in $ns printed no summary: kubectl -n $ns logs load"
	k -n "$ns" logs load >"$out/load-$ns.log"
done

# --- Create to Ready, with and without injection, alternating (issue 16).
for i in $(seq "$ready_samples"); do
	for ns in "$ns_on" "$ns_off"; do
		name=ready-$i
		t0=$(date +%s.%N)
		cat <<EOF | k apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $ns
  labels: {app: ready-sample}
  annotations:
    drain.io/proxies: proxy
    $hook_annotation
    $profile_annotation
    $delay_annotation
    $max_delay_annotation
spec:
$(pod_spec | sed 's/^    //')
EOF
		k -n "$ns" wait --for=condition=Ready "pod/$name" --timeout=180s >/dev/null || die "sample pod $name in $ns never became Ready"
		t1=$(date +%s.%N)
		k -n "$ns" delete pod "$name" --wait=false >/dev/null
		echo "$t0 $t1" >>"$out/ready-$ns.txt"
	done
done

# --- Results (drain-e2e results: the one definition of results.json), table, picture, verdict.
"$report_bin" results "$out" --kubernetes-version "$version" --restarts "$restarts" \
	--lb-delay "$lb_delay" --opted-in "$ns_on" --plain "$ns_off" --plan "$status_on" \
	--proxy-image "$proxy_image" --app-image "$app_image" --hook "${hook:-auto}" \
	--clients "$clients" --delay "$delay" --max-delay "$max_delay" --profile "${profile:-none}" \
	--stream-linger "$stream_linger" || die "cannot assemble $out/results.json (see above)"
"$report_bin" report "$out/results.json" --svg "$out/results.svg"
