#!/usr/bin/env bash
# Runs Debian's containerd with its CRI plugin as a second, private runtime,
# so `berth run` can be tested against a CRI runtime other than berth:
#
#   hack/containerd.sh start   start it, import the local images, prove a pod runs
#   hack/containerd.sh stop    stop its pods, kill it, remove every trace (idempotent)
#   hack/containerd.sh env     print CONTAINERD_ENDPOINT=unix://<dir>/containerd.sock
#   hack/containerd.sh status  exit 0 when it runs and answers, 1 otherwise
#
# Everything lives under BERTH_CONTAINERD_DIR (default /run/berth-containerd):
# root, state, socket, runc state, network namespaces, CNI config and IPAM.
# Docker's own containerd (/var/run/docker/containerd) and anything at
# /run/containerd are left alone. Its pods use their own bridge and subnet,
# apart from berth's (berth0, 10.88.0.0/16) and from the /24s the integration
# and bench suites pick in 10.89.0.0/16.
#
# Host quirks this config answers (Debian 12 containerd 1.6.20, no systemd,
# cgroup v1 with a v2 mount beside it, no AppArmor, root without
# CAP_SYS_RESOURCE): cgroupfs driver, AppArmor off, oom_score_adj clamped.
# Needs root, a running dockerd with the berth.local images and the CNI
# plugins: `make setup`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DIR=${BERTH_CONTAINERD_DIR:-/run/berth-containerd}
# stop removes DIR whole: refuse anything but a dedicated absolute path.
[[ "$DIR" == /?*/?* ]] || { echo "containerd: error: BERTH_CONTAINERD_DIR=$DIR: want a dedicated dir such as /run/berth-containerd" >&2; exit 2; }
SOCK="$DIR/containerd.sock"
CONFIG="$DIR/config.toml"
LOG="$DIR/containerd.log"
PIDFILE="$DIR/containerd.pid"
CRICTL_CONFIG="$DIR/crictl.yaml"
NAMESPACE=k8s.io # the CRI plugin's containerd namespace
NETWORK=berth-containerd
BRIDGE=berthctrd0
SUBNET=10.90.0.0/16
CNI_BIN_DIR=/usr/lib/cni # Debian's containernetworking-plugins
PAUSE_IMAGE=berth.local/pause:3.10
BUSYBOX_IMAGE=berth.local/busybox:1.36
START_WAIT=30
# containerd 1.6 shims put their sockets here whatever the state dir is.
SHIM_SOCKET_DIR=/run/containerd/s

log() { printf 'containerd: %s\n' "$*"; }
die() { printf 'containerd: error: %s\n' "$*" >&2; exit 1; }

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/go/bin"

CRICTL=""
crictl() { "$CRICTL" --config "$CRICTL_CONFIG" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace "$NAMESPACE" "$@"; }
# quietly CMD...: run CMD with its stderr shown only when it fails (crictl
# warns about every pod without a cgroup parent).
quietly() {
	local err rc=0
	err=$(mktemp /tmp/berth-containerd.XXXXXX)
	"$@" 2>"$err" || rc=$?
	if [[ $rc -ne 0 ]]; then cat "$err" >&2; fi
	rm -f "$err"
	return $rc
}
answers() { [[ -S "$SOCK" ]] && ctr --address "$SOCK" version >/dev/null 2>&1; }

# pid_alive: the pid in PIDFILE, when that process is still our containerd.
pid_alive() {
	[[ -s "$PIDFILE" ]] || return 1
	local pid
	pid=$(cat "$PIDFILE")
	[[ -r "/proc/$pid/cmdline" ]] || return 1
	# A recycled pid would not carry our config path.
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config $CONFIG" || return 1
	echo "$pid"
}

ensure_crictl() {
	CRICTL="$ROOT/bin/crictl"
	if [[ ! -x "$CRICTL" ]]; then
		make -s -C "$ROOT" crictl >/dev/null || die "make crictl failed"
	fi
}

ensure_binaries() {
	local missing=() b
	for b in containerd ctr containerd-shim-runc-v2 runc; do
		command -v "$b" >/dev/null || missing+=("$b")
	done
	[[ ${#missing[@]} -eq 0 ]] && return
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -q && apt-get install -y -q --no-install-recommends containerd runc; } >/dev/null; then
		die "apt-get install containerd runc failed (missing: ${missing[*]})"
	fi
	log "installed containerd runc"
}

check_prerequisites() {
	[[ $EUID -eq 0 ]] || die "run as root"
	local p
	for p in bridge host-local portmap loopback; do
		[[ -x "$CNI_BIN_DIR/$p" ]] || die "CNI plugin $CNI_BIN_DIR/$p missing (make setup)"
	done
	for p in "$PAUSE_IMAGE" "$BUSYBOX_IMAGE"; do
		docker image inspect "$p" >/dev/null 2>&1 || die "image $p not in dockerd (make setup)"
	done
}

# pick_snapshotter: overlayfs when an overlay mounts on DIR's filesystem
# (what containerd's own check needs), native otherwise.
pick_snapshotter() {
	local p="$DIR/overlay-probe"
	mkdir -p "$p/lower" "$p/upper" "$p/work" "$p/merged"
	local snap=native
	if mount -t overlay overlay -o "lowerdir=$p/lower,upperdir=$p/upper,workdir=$p/work" "$p/merged" 2>/dev/null; then
		umount "$p/merged"
		snap=overlayfs
	fi
	rm -rf "$p"
	echo "$snap"
}

write_cni_config() {
	mkdir -p "$DIR/cni"
	cat >"$DIR/cni/10-$NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/ipam",
        "ranges": [[{ "subnet": "$SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
}

write_config() {
	local snapshotter=$1
	# Snapshotters that do not apply to this host are off, to keep the log
	# quiet. The v1 linux runtime must stay: the tasks service needs it.
	cat >"$CONFIG" <<EOF
version = 2
root = "$DIR/root"
state = "$DIR/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$DIR/opt"

  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "$DIR/runc-v1"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    # No AppArmor on these hosts; containerd would otherwise ask for a profile.
    disable_apparmor = true
    # Root lacks CAP_SYS_RESOURCE: the sandbox's default oom_score_adj (-998)
    # would be refused, so clamp every request to containerd's own score.
    restrict_oom_score_adj = true
    # No systemd: cgroupfs paths on the v1 hierarchies.
    systemd_cgroup = false
    disable_cgroup = false
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true
    # Pod network namespaces under DIR, not /var/run/netns.
    netns_mounts_under_state_dir = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN_DIR"
      conf_dir = "$DIR/cni"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "$snapshotter"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "$(command -v runc)"
          # runc's state would otherwise go to /run/containerd/runc/k8s.io,
          # shared with any other containerd on the host.
          Root = "$DIR/runc"
          SystemdCgroup = false
EOF
	cat >"$CRICTL_CONFIG" <<EOF
runtime-endpoint: unix://$SOCK
image-endpoint: unix://$SOCK
timeout: 30
EOF
}

# wait_ready: the socket answers and the CRI reports runtime and network ready.
wait_ready() {
	local pid=$1 i
	for ((i = 0; i < START_WAIT * 5; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$LOG" >&2 || true
			die "containerd exited; see $LOG"
		fi
		if grep -q 'failed to load plugin io.containerd.grpc.v1.cri' "$LOG"; then
			grep 'failed to load plugin' "$LOG" >&2
			die "containerd's CRI plugin did not load; see $LOG"
		fi
		if answers; then
			local conds
			conds=$(crictl info -o go-template --template '{{range .status.conditions}}{{.type}}={{.status}} {{end}}' 2>/dev/null || true)
			if [[ "$conds" == *RuntimeReady=true* && "$conds" == *NetworkReady=true* ]]; then
				return
			fi
		fi
		sleep 0.2
	done
	tail -n 30 "$LOG" >&2 || true
	die "containerd's CRI was not ready within ${START_WAIT}s; see $LOG"
}

import_images() {
	local snapshotter=$1
	local out
	if ! out=$(docker save "$PAUSE_IMAGE" "$BUSYBOX_IMAGE" | ctr_ images import --snapshotter "$snapshotter" - 2>&1); then
		printf '%s\n' "$out" >&2
		die "import images into containerd failed"
	fi
	local img
	for img in "$PAUSE_IMAGE" "$BUSYBOX_IMAGE"; do
		crictl inspecti "$img" >/dev/null 2>&1 || die "image $img imported but the CRI does not list it"
	done
}

# verify: a pod sandbox and a container in it run through the CRI.
verify() {
	local v="$DIR/verify"
	mkdir -p "$v/logs"
	cat >"$v/pod.json" <<EOF
{"metadata": {"name": "berth-containerd-verify", "namespace": "default", "uid": "berth-containerd-verify", "attempt": 0},
 "log_directory": "$v/logs", "linux": {}}
EOF
	cat >"$v/ctr.json" <<EOF
{"metadata": {"name": "check"}, "image": {"image": "$BUSYBOX_IMAGE"},
 "command": ["echo", "berth-containerd-ok"], "log_path": "check.log", "linux": {}}
EOF
	local pod cid state="" i
	pod=$(quietly crictl runp "$v/pod.json") || die "verify: run pod sandbox failed; see $LOG"
	cid=$(quietly crictl create "$pod" "$v/ctr.json" "$v/pod.json") || die "verify: create container failed; see $LOG"
	quietly crictl start "$cid" >/dev/null || die "verify: start container failed; see $LOG"
	for ((i = 0; i < 100; i++)); do
		state=$(crictl inspect -o go-template --template '{{.status.state}} {{.status.exitCode}}' "$cid" 2>/dev/null || true)
		[[ "$state" == CONTAINER_EXITED* ]] && break
		sleep 0.1
	done
	[[ "$state" == "CONTAINER_EXITED 0" ]] || die "verify: container state $state, want CONTAINER_EXITED 0"
	grep -q berth-containerd-ok "$v/logs/check.log" || die "verify: container log lacks its output"
	if ! { crictl stopp "$pod" && crictl rmp "$pod"; } >/dev/null; then die "verify: remove pod failed"; fi
	rm -rf "$v"
}

do_start() {
	local t0=$SECONDS pid
	check_prerequisites
	ensure_binaries
	ensure_crictl
	if pid=$(pid_alive) && answers; then
		log "running (pid $pid), endpoint unix://$SOCK"
		return
	fi
	# A dead instance's leftovers (mounts, runc state, bridge) would confuse
	# a new one: clear them first.
	do_stop quiet
	mkdir -p "$DIR"
	chmod 0711 "$DIR"
	local snapshotter
	snapshotter=$(pick_snapshotter)
	write_cni_config
	write_config "$snapshotter"
	# No systemd: its own session, so it outlives this script.
	setsid containerd --config "$CONFIG" >>"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	wait_ready "$pid"
	import_images "$snapshotter"
	verify
	log "started (pid $pid, $snapshotter, log $LOG) in $((SECONDS - t0))s; endpoint unix://$SOCK"
}

# our_shims: "pid id" of every shim serving our socket.
our_shims() {
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		{ tr '\0' '\n' <"$f"; } 2>/dev/null | awk -v sock="$SOCK" -v pid="$pid" '
			NR == 1 && $0 !~ /containerd-shim/ { exit }
			prev == "-address" && $0 == sock { ours = 1 }
			prev == "-id" { id = $0 }
			{ prev = $0 }
			END { if (ours && id != "") print pid, id }'
	done
}

kill_and_wait() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# cleanup_iptables removes the rules the bridge (ipMasq) and portmap plugins
# left for this network, found by the comment they carry, and the per-pod
# CNI-* chains those rules jump to.
cleanup_iptables() {
	command -v iptables >/dev/null || return 0
	local table chain n target chains=()
	for table in nat filter; do
		for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-P" || $1 == "-N" { print $2 }'); do
			while read -r n target; do
				iptables -t "$table" -D "$chain" "$n" 2>/dev/null || true
				if [[ "$target" == CNI-* && "$target" != CNI-HOSTPORT-* ]]; then chains+=("$table/$target"); fi
			done < <(iptables -t "$table" -L "$chain" -n --line-numbers 2>/dev/null |
				awk -v tag="name: \"$NETWORK\"" -v net="$SUBNET" 'NR > 2 && (index($0, tag) || index($0, net)) { print $1, $2 }' |
				sort -rn)
		done
	done
	local c
	for c in "${chains[@]}"; do
		iptables -t "${c%%/*}" -F "${c#*/}" 2>/dev/null || true
		iptables -t "${c%%/*}" -X "${c#*/}" 2>/dev/null || true
	done
}

do_stop() {
	local quiet=${1:-}
	[[ $EUID -eq 0 ]] || die "run as root"
	if [[ -z "$CRICTL" && -x "$ROOT/bin/crictl" ]]; then CRICTL="$ROOT/bin/crictl"; fi
	# Stopping pods through the CRI runs CNI DEL, which removes their veths,
	# IPs and iptables rules the way they were added.
	if [[ -n "$CRICTL" && -f "$CRICTL_CONFIG" ]] && answers; then
		local p
		for p in $(crictl pods -q 2>/dev/null); do
			crictl stopp "$p" >/dev/null 2>&1 || true
			crictl rmp -f "$p" >/dev/null 2>&1 || true
		done
	fi
	local pid
	if pid=$(pid_alive); then kill_and_wait "$pid"; fi
	# What the CRI could not stop: containers first (their shims then have
	# nothing to wait for), then the shims and the sockets they leave.
	if [[ -d "$DIR/runc/$NAMESPACE" ]]; then
		local id
		for id in $(runc --root "$DIR/runc/$NAMESPACE" list -q 2>/dev/null); do
			runc --root "$DIR/runc/$NAMESPACE" kill -a "$id" KILL 2>/dev/null || true
			runc --root "$DIR/runc/$NAMESPACE" delete -f "$id" 2>/dev/null || true
		done
	fi
	local spid sid
	while read -r spid sid; do
		[[ -n "$spid" ]] || continue
		kill -KILL "$spid" 2>/dev/null || true
		rm -f "$SHIM_SOCKET_DIR/$(printf '%s' "$SOCK/$NAMESPACE/$sid" | sha256sum | cut -d' ' -f1)"
	done < <(our_shims)
	# Deepest first: snapshots, netns and shm mounts under DIR.
	local m
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done < <(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	rm -rf "$DIR"
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
	cleanup_iptables
	# libcni caches results by network name outside DIR; CNI DEL removes
	# them, a crash does not.
	rm -f /var/lib/cni/results/"$NETWORK"-*
	[[ -n "$quiet" ]] || log "stopped; $DIR removed"
}

case "${1:-}" in
start) do_start ;;
stop) do_stop ;;
env) echo "CONTAINERD_ENDPOINT=unix://$SOCK" ;;
status)
	if pid=$(pid_alive) && answers; then
		log "running (pid $pid), endpoint unix://$SOCK"
	else
		log "not running"
		exit 1
	fi
	;;
*) die "usage: $0 start|stop|env|status" ;;
esac
