#!/usr/bin/env bash
# CRI conformance: the real critest (sigs.k8s.io/cri-tools, the version in
# go.mod) against a berth of its own. `make conformance` runs it; as root,
# after `make setup build crictl`.
#
#   hack/conformance.sh          the validation suite; the last line is
#                                "N passed, M failed, K skipped"
#   hack/conformance.sh bench    critest -benchmark (test/conformance/benchmark.yaml)
#
# Nothing outside this machine is reachable, so for the run the script:
#   - serves stand-ins of critest's images (hack/conformance-images.sh) from
#     Debian's docker-registry on 127.0.0.1:443 with TLS from a CA it makes,
#     under the names critest pulls: /etc/hosts points gcr.io, registry.k8s.io
#     and k8s.gcr.io at 127.0.0.1 and /etc/docker/certs.d/<name>/ca.crt makes
#     dockerd trust the CA (read at each pull: no daemon restart);
#   - starts berth on a socket, root dir and CNI network of its own (a bridge
#     on a /24 no route here overlaps, host-local with its own dataDir, portmap).
# On exit all of it is undone: /etc/hosts restored, certs.d entries removed,
# registry and berth stopped, the test images removed from Docker, the bridge
# deleted, temporary files removed. The registry's storage is kept in
# bin/conformance-cache and rebuilt when an input of the images changes;
# bin/critest is rebuilt when go.sum changes.
#
# Output in $CONFORMANCE_OUT (default bin/conformance): critest.log (ginkgo's
# output), junit.xml, summary.txt, and berth.log when anything failed.
# Specs listed in test/conformance/skip.txt are skipped, each with its reason;
# any other failure is berth's. Afterwards no sandbox or container of the run
# may be left (crictl and docker are asked); the exit status is non-zero when a
# spec failed or anything was left.
#
# Environment: CONFORMANCE_FOCUS (a ginkgo -focus regex, to run a subset),
# CONFORMANCE_PARALLEL (ginkgo nodes, default 1), BERTH_LOG_LEVEL (default info).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/go/bin

MODE=${1:-run}
OUT=${CONFORMANCE_OUT:-$ROOT/bin/conformance}
CACHE=$ROOT/bin/conformance-cache
BERTH=$ROOT/bin/berth
CRICTL=$ROOT/bin/crictl
CRITEST=$ROOT/bin/critest
GINKGO=$ROOT/bin/ginkgo
REPORT=$ROOT/bin/conformance-report
SKIP_FILE=$ROOT/test/conformance/skip.txt
BENCH_PARAMS=$ROOT/test/conformance/benchmark.yaml
IMAGES=$ROOT/hack/conformance-images.sh
PARALLEL=${CONFORMANCE_PARALLEL:-1}
FOCUS=${CONFORMANCE_FOCUS:-}

REGISTRY_NAMES=(gcr.io registry.k8s.io k8s.gcr.io)
HOSTS_MARK="# berth-conformance"
CERTS_D=/etc/docker/certs.d
CERTS_MARK=.berth-conformance
LOCK=/run/berth-conformance.lock
BRIDGE=berthcf0
NETWORK=berth-conformance
# The critest pod namespaces: every sandbox the run makes is in one.
TEST_NAMESPACE_PREFIX=cri-test-namespace
START_WAIT=30 # seconds for the registry and berth to answer
MAX_CRASHES=5 # critest runs again without the spec it died in, this often
# The images critest's -test-images-file names: upstream's default busybox, and
# for the web server the busybox httpd stand-in (not nginx: the specs only GET /).
DEFAULT_IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
WEB_SERVER_IMAGE=registry.k8s.io/e2e-test-images/httpd:2.4.39-4
# Host ports the specs bind (cri-tools pkg/validate/consts*.go).
TEST_PORTS=(12000 12001 12002 12003)

log() { printf 'conformance: %s\n' "$*"; }
die() { printf 'conformance: error: %s\n' "$*" >&2; exit 1; }

work=""
registry_pid=""
berth_pid=""
hosts_orig=""
hosts_ours=""
certs_made=()
certs_d_made=""
images_cleanup=""
bridge_made=""
failed_run=""
final_line=""

# ---- cleanup ----------------------------------------------------------------

# stop_pid PID NAME: TERM, then KILL after 15 s.
stop_pid() {
	local pid=$1 name=$2 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) did not stop on SIGTERM in 15s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

restore_hosts() {
	[[ -n "$hosts_orig" ]] || return 0
	if cmp -s /etc/hosts "$hosts_ours"; then
		# Unchanged since we wrote it: put back the exact original. Written in
		# place, not renamed: /etc/hosts may be a bind mount.
		cat "$hosts_orig" >/etc/hosts
	else
		# Someone else changed it meanwhile: take out only our lines.
		grep -vF "$HOSTS_MARK" /etc/hosts >"$work/hosts.now" || true
		cat "$work/hosts.now" >/etc/hosts
	fi
	hosts_orig=""
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n "$berth_pid" ]]; then
		stop_pid "$berth_pid" berth
		if [[ -n "$failed_run" || $rc -ne 0 ]]; then
			cp "$work/berth.log" "$OUT/berth.log" 2>/dev/null && log "berth's log: $OUT/berth.log"
		fi
	fi
	if [[ -n "$bridge_made" ]] && ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link del "$BRIDGE"
	fi
	if [[ -n "$images_cleanup" ]]; then remove_test_images; fi
	[[ -n "$registry_pid" ]] && stop_pid "$registry_pid" registry
	restore_hosts
	local d
	for d in "${certs_made[@]}"; do rm -rf "$d"; done
	if [[ -n "$certs_d_made" ]]; then rmdir "$CERTS_D" 2>/dev/null; fi
	if [[ -n "$work" ]]; then
		unmount_under "$work"
		rm -rf --one-file-system "$work"
	fi
	# the counts line is the last line of a run
	if [[ -n "$final_line" ]]; then echo "$final_line"; fi
	exit "$rc"
}

# unmount_under DIR: detach every mount below DIR, deepest first. critest
# runs with TMPDIR in the work dir, and a spec cut short can leave its
# mount-propagation mounts there (one of them binds /etc).
unmount_under() {
	local m
	awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || log "could not unmount $m"; done
}

# remove_test_images: every stand-in name out of Docker (untagging only: an
# image another name still holds stays).
remove_test_images() {
	local ref
	while read -r ref; do
		if docker image inspect "$ref" >/dev/null 2>&1; then
			docker image rm "$ref" >/dev/null 2>&1 || log "could not remove image $ref"
		fi
	done < <("$IMAGES" names)
}

# ---- checks and builds -------------------------------------------------------

preflight() {
	[[ $EUID -eq 0 ]] || die "run as root"
	local c
	for c in docker docker-registry openssl apt-get ip ipcmk iptables; do
		command -v "$c" >/dev/null || die "$c not found (make setup installs the packages)"
	done
	[[ -x "$BERTH" ]] || die "$BERTH missing: make build"
	[[ -x "$CRICTL" ]] || die "$CRICTL missing: make crictl"
	docker info >/dev/null 2>&1 || die "dockerd does not answer (make setup)"
	local pause
	pause=$("$BERTH" serve --help 2>/dev/null | sed -n 's/.*--pod-infra-image string.*(default "\([^"]*\)").*/\1/p')
	if [[ -n "$pause" ]] && ! docker image inspect "$pause" >/dev/null 2>&1; then
		die "pause image $pause missing: make images"
	fi
}

check_ports() {
	local p
	for p in 443 "${TEST_PORTS[@]}"; do
		if ss -Hltn "sport = :$p" | grep -q .; then
			die "port $p is in use; the registry and the specs need it free"
		fi
	done
}

# stale_leftovers: what a run killed with SIGKILL could not undo.
stale_leftovers() {
	local pid
	for pid in $(pgrep -x docker-registry || true); do
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/tmp/berth-conformance\.'; then
			kill -TERM "$pid" 2>/dev/null && log "stopped a stale registry (pid $pid)"
			sleep 1
		fi
	done
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link del "$BRIDGE" && log "removed stale bridge $BRIDGE"
	fi
	if grep -qF "$HOSTS_MARK" /etc/hosts; then
		grep -vF "$HOSTS_MARK" /etc/hosts >"$work/hosts.clean" || true
		cat "$work/hosts.clean" >/etc/hosts
		log "removed stale $HOSTS_MARK lines from /etc/hosts"
	fi
	local n
	for n in "${REGISTRY_NAMES[@]}"; do
		if [[ -f "$CERTS_D/$n/$CERTS_MARK" ]]; then
			rm -rf "${CERTS_D:?}/$n"
			log "removed stale $CERTS_D/$n"
		elif [[ -e "$CERTS_D/$n" ]]; then
			die "$CERTS_D/$n exists and is not ours; the run would replace it"
		fi
	done
}

# build_critest: bin/critest at the cri-tools version in go.mod, rebuilt when
# go.sum (or the toolchain) changes; bin/ginkgo too when running in parallel.
build_critest() {
	local version stamp
	version=$(go list -m -f '{{.Version}}' sigs.k8s.io/cri-tools)
	stamp=$({ sha256sum go.sum; go version; echo "$version"; } | sha256sum | cut -d' ' -f1)
	if [[ -x "$CRITEST" && "$(cat "$CRITEST.stamp" 2>/dev/null)" == "$stamp" ]]; then
		log "critest $version up to date"
	else
		go test -c -o "$CRITEST" -ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$version" \
			sigs.k8s.io/cri-tools/cmd/critest
		echo "$stamp" >"$CRITEST.stamp"
		log "critest $version built"
	fi
	if [[ "$PARALLEL" -gt 1 ]] && ! [[ -x "$GINKGO" && "$(cat "$GINKGO.stamp" 2>/dev/null)" == "$stamp" ]]; then
		go build -o "$GINKGO" github.com/onsi/ginkgo/v2/ginkgo
		echo "$stamp" >"$GINKGO.stamp"
		log "ginkgo built"
	fi
	go build -o "$REPORT" ./test/conformance/report
}

# ---- registry, names, certificates --------------------------------------------

make_certs() {
	local san="" n
	for n in "${REGISTRY_NAMES[@]}"; do san+="${san:+,}DNS:$n"; done
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=berth conformance CA" \
		-keyout "$work/ca.key" -out "$work/ca.crt" >"$work/openssl.log" 2>&1
	openssl req -newkey rsa:2048 -nodes -subj "/CN=${REGISTRY_NAMES[0]}" \
		-keyout "$work/registry.key" -out "$work/registry.csr" >>"$work/openssl.log" 2>&1
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$work/registry.ext"
	openssl x509 -req -in "$work/registry.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
		-days 2 -extfile "$work/registry.ext" -out "$work/registry.crt" >>"$work/openssl.log" 2>&1
}

start_registry() {
	mkdir -p "$CACHE/registry"
	cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$CACHE/registry"
http:
  addr: 127.0.0.1:443
  secret: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  tls:
    certificate: "$work/registry.crt"
    key: "$work/registry.key"
EOF
	# 9>&-: the run's lock is not the registry's to hold
	setsid docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 </dev/null 9>&- &
	registry_pid=$!
	local i
	for ((i = 0; i < START_WAIT * 10; i++)); do
		if ss -Hltn "sport = :443" | grep -q .; then return 0; fi
		kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; die "registry exited"; }
		sleep 0.1
	done
	die "registry did not listen on 127.0.0.1:443 within ${START_WAIT}s"
}

# point_names: /etc/hosts and certs.d for every registry name.
point_names() {
	hosts_orig="$work/hosts.orig"
	hosts_ours="$work/hosts.ours"
	cat /etc/hosts >"$hosts_orig"
	{
		cat "$hosts_orig"
		# a file without a final newline must not swallow our line
		[[ -z "$(tail -c1 "$hosts_orig")" ]] || echo
		echo "127.0.0.1 ${REGISTRY_NAMES[*]} $HOSTS_MARK"
	} >"$hosts_ours"
	cat "$hosts_ours" >/etc/hosts
	local n
	if [[ ! -d "$CERTS_D" ]]; then certs_d_made=1; fi
	for n in "${REGISTRY_NAMES[@]}"; do
		mkdir -p "$CERTS_D/$n"
		certs_made+=("$CERTS_D/$n")
		touch "$CERTS_D/$n/$CERTS_MARK"
		cp "$work/ca.crt" "$CERTS_D/$n/ca.crt"
	done
	if command -v curl >/dev/null; then
		curl -fsS --cacert "$work/ca.crt" "https://${REGISTRY_NAMES[0]}/v2/" >/dev/null ||
			die "the registry does not answer at https://${REGISTRY_NAMES[0]}/v2/"
	fi
}

# images_current: the stand-ins in the registry's storage were built from
# the inputs of now (main wipes the storage before the registry starts if not).
images_hash=""
images_current() {
	images_hash=$("$IMAGES" hash)
	[[ "$(cat "$CACHE/images.hash" 2>/dev/null)" == "$images_hash" && -d "$CACHE/registry/docker" ]]
}

# ---- berth ------------------------------------------------------------------

free_subnet() {
	# A 10.x.y.0/24 that overlaps no route on this machine.
	local routes x y
	routes=$(ip -4 route show table all | awk '{print $1}' | grep -E '^[0-9.]+(/[0-9]+)?$' || true)
	for x in 233 234 235 236; do
		for y in 71 72 73 74 75; do
			if ! overlaps "10.$x.$y.0/24" "$routes"; then
				echo "10.$x.$y.0/24"
				return
			fi
		done
	done
	die "no free 10.x.y.0/24 for the test network"
}

ip2int() {
	local IFS=. a b c d
	read -r a b c d <<<"$1"
	echo $(((a << 24) + (b << 16) + (c << 8) + d))
}

# overlaps CIDR ROUTES: true when CIDR overlaps one of ROUTES (one a line).
overlaps() {
	local net=${1%/*} len=${1#*/} r rnet rlen lo hi rlo rhi
	lo=$(ip2int "$net")
	hi=$((lo + (1 << (32 - len)) - 1))
	while read -r r; do
		[[ -n "$r" ]] || continue
		rnet=${r%/*}
		rlen=32
		[[ "$r" == */* ]] && rlen=${r#*/}
		[[ "$rlen" -eq 0 ]] && continue # the default route
		rlo=$(ip2int "$rnet")
		rlo=$((rlo & ~((1 << (32 - rlen)) - 1) & 0xffffffff))
		rhi=$((rlo + (1 << (32 - rlen)) - 1))
		if ((lo <= rhi && rlo <= hi)); then return 0; fi
	done <<<"$2"
	return 1
}

write_cni() {
	local subnet
	subnet=$(free_subnet)
	ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists (another run?)"
	mkdir -p "$work/cni" "$work/ipam"
	cat >"$work/cni/10-conformance.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$work/ipam",
        "ranges": [[{ "subnet": "$subnet" }]]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
	bridge_made=1
	log "pod network: bridge $BRIDGE, $subnet"
}

start_berth() {
	sock="$work/berth.sock"
	endpoint="unix://$sock"
	setsid "$BERTH" serve --listen "$endpoint" --root-dir "$work/root" --cni-conf-dir "$work/cni" \
		--log-level "${BERTH_LOG_LEVEL:-info}" >"$work/berth.log" 2>&1 </dev/null 9>&- &
	berth_pid=$!
	local i
	for ((i = 0; i < START_WAIT * 10; i++)); do
		if [[ -S "$sock" ]] && cri version >/dev/null 2>&1; then
			log "berth $("$BERTH" version 2>/dev/null | head -n1) serving on $endpoint (pid $berth_pid)"
			return 0
		fi
		kill -0 "$berth_pid" 2>/dev/null || { cat "$work/berth.log" >&2; die "berth exited"; }
		sleep 0.1
	done
	die "berth did not answer within ${START_WAIT}s"
}

cri() {
	"$CRICTL" --config "$work/crictl.yaml" --runtime-endpoint "$endpoint" --image-endpoint "$endpoint" --timeout 30s "$@"
}

# ---- after the run -----------------------------------------------------------

# item TITLE LIST: "  TITLE: COUNT (the list on one line)".
item() {
	local n
	n=$(grep -c . <<<"$2" || true)
	printf '  %s: %s%s\n' "$1" "$n" "${2:+ ($(tr '\n' ' ' <<<"$2" | sed 's/ $//'))}"
}

# leftovers: what the run left in berth and Docker; removes it and returns
# non-zero when there was any.
leftovers() {
	local pods ctrs="" dockers sandboxes id ns
	pods=$(cri pods -q --namespace "^$TEST_NAMESPACE_PREFIX" 2>&1) || pods="(crictl pods failed: $pods)"
	# Containers made during the run whose pod is a critest pod. (crictl ps
	# --namespace reads the container's own labels, which critest's lack.)
	for id in $(cri ps -a -q 2>/dev/null); do
		grep -qx "$id" "$work/containers.before" && continue
		ns=$(docker inspect -f '{{index .Config.Labels "io.kubernetes.pod.namespace"}}' "$id" 2>/dev/null) || ns="(not in docker)"
		if [[ "$ns" == "$TEST_NAMESPACE_PREFIX"* || "$ns" == "(not in docker)" ]]; then ctrs+="$id"$'\n'; fi
	done
	ctrs=${ctrs%$'\n'}
	dockers=$(docker ps -a --filter label=io.berth.managed=true \
		--format '{{.ID}} {{.Label "io.kubernetes.pod.namespace"}} {{.Names}}' |
		awk -v p="$TEST_NAMESPACE_PREFIX" 'index($2, p) == 1 {print $1 " " $3}')
	sandboxes=$(ls -A "$work/root/sandboxes" 2>/dev/null || true)
	{
		echo "left after the run:"
		item "crictl pods (namespace $TEST_NAMESPACE_PREFIX*)" "$pods"
		item "crictl ps -a (made by the run, in a critest pod)" "$ctrs"
		item "docker ps -a (io.berth.managed=true, namespace $TEST_NAMESPACE_PREFIX*)" "$dockers"
		item "sandbox checkpoints in berth's root dir" "$sandboxes"
	} | tee -a "$OUT/summary.txt"
	if [[ -z "$pods$ctrs$dockers$sandboxes" ]]; then return 0; fi
	# Clean up what berth left so the next run starts clean.
	for id in $pods; do cri rmp -f "$id" >/dev/null 2>&1 || true; done
	awk '{print $1}' <<<"$dockers" | xargs -r docker rm -f >/dev/null 2>&1 || true
	return 1
}

# ---- main -------------------------------------------------------------------

main() {
	[[ "$MODE" == run || "$MODE" == bench ]] || die "usage: $0 [bench]"
	preflight
	exec 9>"$LOCK"
	flock -n 9 || die "another conformance run holds $LOCK"
	run_t0=$SECONDS
	local t0=$SECONDS
	work=$(mktemp -d /tmp/berth-conformance.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$OUT" "$CACHE"
	rm -rf "$OUT"/critest*.log "$OUT"/{junit.xml,summary.txt,berth.log,listbench.txt,benchmark}

	stale_leftovers
	check_ports
	build_critest
	"$REPORT" skips "$SKIP_FILE" >"$work/skips"

	make_certs
	local build_images=""
	if ! images_current; then
		build_images=1
		rm -rf "$CACHE/registry" "$CACHE/images.hash"
	fi
	start_registry
	point_names
	images_cleanup=1
	remove_test_images
	if [[ -n "$build_images" ]]; then
		"$IMAGES" push
		echo "$images_hash" >"$CACHE/images.hash"
	else
		log "test images up to date in $CACHE/registry"
	fi

	cat >"$work/crictl.yaml" <<EOF
runtime-endpoint: unix://$work/berth.sock
image-endpoint: unix://$work/berth.sock
EOF
	cat >"$work/images.yaml" <<EOF
defaultTestContainerImage: $DEFAULT_IMAGE
webServerTestImage: $WEB_SERVER_IMAGE
EOF
	# critest's temporary files (log dirs, seccomp profiles, host paths) go
	# in the work dir too
	mkdir -p "$work/tmp"
	write_cni
	start_berth
	cri ps -a -q >"$work/containers.before" 2>/dev/null || true
	log "setup took $((SECONDS - t0))s"

	local args=(-runtime-endpoint "$endpoint" -image-endpoint "$endpoint" -test-images-file "$work/images.yaml")
	if [[ "$MODE" == bench ]]; then
		run_bench "${args[@]}"
	else
		run_validation "${args[@]}"
	fi
}

run_validation() {
	local args=("$@") re rc=0 t0=$SECONDS
	while read -r re; do args+=(-ginkgo.skip "$re"); done <"$work/skips"
	args+=(-ginkgo.timeout 2h -ginkgo.no-color -ginkgo.v)

	# Each skip-list line must still name a spec of this critest.
	"$CRITEST" "${args[@]}" -ginkgo.dry-run -ginkgo.junit-report "$work/dry-run.xml" >"$work/dry-run.log" 2>&1 || true
	"$REPORT" skipcheck "$SKIP_FILE" "$work/dry-run.xml"

	[[ -n "$FOCUS" ]] && args+=(-ginkgo.focus "$FOCUS")
	[[ "$PARALLEL" -gt 1 ]] && args+=(-parallel "$PARALLEL")
	# critest dies when a spec fails an assertion in a goroutine of its own
	# (no GinkgoRecover there) and then writes no report: run it again
	# without that spec, which is counted as failed, up to MAX_CRASHES times.
	local attempt log id
	: >"$work/crashed"
	for ((attempt = 1; ; attempt++)); do
		log="$OUT/critest.log"
		[[ $attempt -gt 1 ]] && log="$OUT/critest.$attempt.log"
		log "running critest (output: $log)"
		rc=0
		PATH=$ROOT/bin:$PATH TMPDIR="$work/tmp" "$CRITEST" "${args[@]}" -ginkgo.junit-report "$OUT/junit.xml" >"$log" 2>&1 || rc=$?
		log "critest took $((SECONDS - t0))s (exit $rc)"
		[[ -s "$OUT/junit.xml" ]] && break
		local died
		died=$("$REPORT" crashed "$log")
		if [[ -z "$died" || $attempt -gt $MAX_CRASHES || "$PARALLEL" -gt 1 ]]; then
			tail -n 40 "$log" >&2
			failed_run=1
			die "critest wrote no JUnit report; see $log"
		fi
		printf '%s\n' "$died" >>"$work/crashed"
		log "critest died in: $(cut -f2 <<<"$died"); running it again without that spec"
		# what that spec had made: its deferred cleanup never ran
		for id in $(cri pods -q --namespace "^$TEST_NAMESPACE_PREFIX" 2>/dev/null); do
			cri rmp -f "$id" >/dev/null 2>&1 || true
		done
		args+=(-ginkgo.skip "$(cut -f1 <<<"$died")")
		t0=$SECONDS
	done

	local left=0
	leftovers || left=1
	"$REPORT" summary -exclude benchmark -crashed "$work/crashed" "$OUT/junit.xml" >>"$OUT/summary.txt"
	final_line=$(tail -n 1 "$OUT/summary.txt")
	# all but the counts line now; that one is printed last, after the cleanup
	sed '$d' "$OUT/summary.txt" | sed -n '/^SKIPPED by critest\|^FAILED\|^    /p'
	log "took $((SECONDS - run_t0))s in all; output in $OUT"
	if [[ "$final_line" != *" 0 failed"* || $left -ne 0 || $rc -ne 0 ]]; then
		failed_run=1
		if [[ $left -ne 0 ]]; then log "berth left sandboxes or containers behind (removed now)"; fi
		exit 1
	fi
}

run_bench() {
	local args=("$@") rc=0
	mkdir -p "$OUT/benchmark"
	args+=(-benchmark -benchmarking-params-file "$BENCH_PARAMS" -benchmarking-output-dir "$OUT/benchmark"
		-ginkgo.junit-report "$OUT/junit.xml" -ginkgo.no-color)
	log "running critest -benchmark (output: $OUT/critest.log)"
	TMPDIR="$work/tmp" "$CRITEST" "${args[@]}" >"$OUT/critest.log" 2>&1 || rc=$?
	# critest v1.37.0 measures no ListContainers: measured here, with 30 pods running
	local lrc=0
	"$REPORT" listbench -endpoint "$endpoint" -image "$DEFAULT_IMAGE" -n 30 >"$OUT/listbench.txt" 2>&1 || lrc=$?
	local left=0
	leftovers >/dev/null || left=1
	{
		"$REPORT" bench "$OUT/benchmark"
		cat "$OUT/listbench.txt"
	} | tee "$OUT/summary.txt"
	if [[ $rc -ne 0 || $lrc -ne 0 || $left -ne 0 ]]; then
		failed_run=1
		"$REPORT" summary "$OUT/junit.xml" | grep -A1 '^FAILED' || true
		die "critest -benchmark failed (exit $rc) or left containers; see $OUT/critest.log"
	fi
}

main "$@"
