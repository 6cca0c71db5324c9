#!/usr/bin/env bash
# A walk through berth with crictl, as root, after `make setup build crictl`
# (`make demo` does all of it): start berth on /run/berth/berth.sock, run a pod
# and a busybox container in it, show them and the pod's IP, then remove
# everything and stop berth. The EXIT trap cleans up on failure too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BERTH=bin/berth
CRICTL=bin/crictl
SOCK=/run/berth/berth.sock
ENDPOINT="unix://$SOCK"
BERTH_LOG=/tmp/berth-demo.log
IMAGE=berth.local/busybox:1.36
POD_LOG_DIR=/var/log/pods/default_demo_demo-uid
START_WAIT=30 # seconds for berth to answer

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root"
[[ -x "$BERTH" ]] || die "$BERTH missing: make build"
[[ -x "$CRICTL" ]] || die "$CRICTL missing: make crictl"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE missing: make setup"

tmp=$(mktemp -d /tmp/berth-demo.XXXXXX)
berth_pid=""
pod_id=""
ctr_id=""
made_log_dir=""

# crictl with berth as both endpoints. The config file only silences crictl's
# search for /etc/crictl.yaml; the flags say what is used.
cat >"$tmp/crictl.yaml" <<EOF
runtime-endpoint: $ENDPOINT
image-endpoint: $ENDPOINT
pull-image-on-create: false
EOF
# cri_t TIMEOUT ARGS...: crictl with a per-call timeout; cri ARGS...: 60 s.
cri_t() {
	local timeout=$1
	shift
	"$CRICTL" --config "$tmp/crictl.yaml" --runtime-endpoint "$ENDPOINT" --image-endpoint "$ENDPOINT" \
		--timeout "$timeout" "$@"
}
cri() { cri_t 60s "$@"; }

cleanup() {
	local rc=$?
	set +e
	say "cleanup"
	if [[ -n "$ctr_id" ]]; then
		cri stop --timeout 2 "$ctr_id" >/dev/null && echo "stopped container $ctr_id"
		cri rm "$ctr_id" >/dev/null && echo "removed container $ctr_id"
	fi
	if [[ -n "$pod_id" ]]; then
		cri stopp "$pod_id" >/dev/null && echo "stopped pod $pod_id"
		# --force also takes any container the steps above could not.
		cri rmp --force "$pod_id" >/dev/null && echo "removed pod $pod_id"
	fi
	if [[ -n "$berth_pid" ]] && kill -0 "$berth_pid" 2>/dev/null; then
		kill -TERM "$berth_pid"
		local i
		for ((i = 0; i < 150; i++)); do
			kill -0 "$berth_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$berth_pid" 2>/dev/null; then
			echo "berth did not stop on SIGTERM in 15s; killing it"
			kill -KILL "$berth_pid"
		fi
		wait "$berth_pid" 2>/dev/null
		echo "stopped berth (pid $berth_pid)"
	fi
	# Nothing else served there (checked before start), so a socket left now is ours.
	if [[ -n "$berth_pid" ]]; then rm -f "$SOCK"; fi
	if [[ -n "$made_log_dir" ]]; then rm -rf "$POD_LOG_DIR"; fi
	rm -rf "$tmp"
	if [[ $rc -ne 0 ]]; then
		printf '\ndemo failed (exit %d); last lines of %s:\n' "$rc" "$BERTH_LOG" >&2
		tail -n 30 "$BERTH_LOG" >&2 2>/dev/null
		if [[ -n "$pod_id" ]]; then
			echo "check for leftovers: docker ps -a" >&2
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if cri_t 2s version >/dev/null 2>&1; then
	die "something already serves $ENDPOINT; stop it first"
fi

say "starting berth (log: $BERTH_LOG)"
mkdir -p "$(dirname "$SOCK")"
"$BERTH" serve --listen "$ENDPOINT" >"$BERTH_LOG" 2>&1 </dev/null &
berth_pid=$!
for ((i = 0; ; i++)); do
	if cri_t 2s version >/dev/null 2>&1; then break; fi
	kill -0 "$berth_pid" 2>/dev/null || die "berth exited"
	((i < START_WAIT * 5)) || die "berth did not answer on $ENDPOINT within ${START_WAIT}s"
	sleep 0.2
done
cri version

# The kubelet makes the pod's log directory before RunPodSandbox; so do we.
if [[ ! -d "$POD_LOG_DIR" ]]; then
	mkdir -p "$POD_LOG_DIR"
	made_log_dir=1
fi

cat >"$tmp/pod.json" <<EOF
{
  "metadata": { "name": "demo", "namespace": "default", "uid": "demo-uid", "attempt": 0 },
  "hostname": "demo",
  "log_directory": "$POD_LOG_DIR",
  "linux": {}
}
EOF
cat >"$tmp/container.json" <<EOF
{
  "metadata": { "name": "hello", "attempt": 0 },
  "image": { "image": "$IMAGE" },
  "command": ["sh", "-c", "echo hello from berth; ip addr show eth0 | grep inet; sleep 3600"],
  "log_path": "hello/0.log",
  "linux": {}
}
EOF

say "crictl runp: pod demo"
pod_id=$(cri runp "$tmp/pod.json")
echo "pod: $pod_id"

say "crictl create: container hello from $IMAGE"
ctr_id=$(cri create --no-pull "$pod_id" "$tmp/container.json" "$tmp/pod.json")
echo "container: $ctr_id"

say "crictl start"
cri start "$ctr_id"
sleep 1

say "crictl pods"
cri pods
say "crictl ps"
cri ps

say "crictl inspectp: the pod's IP"
pod_ip=$(cri inspectp -o go-template --template '{{ .status.network.ip }}' "$pod_id")
echo "pod IP: $pod_ip"

say "crictl logs hello"
cri logs "$ctr_id" || echo "(no logs from berth yet)"

say "done"
