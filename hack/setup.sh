#!/usr/bin/env bash
# Prepares a Debian 12 host, as root, to run berth and its integration tests:
# packages, a running dockerd, kernel settings for the CNI bridge, a default
# CNI network, and the local images (hack/images.sh). Idempotent: each step
# checks first and does nothing when the host is already right. One line of
# output per step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(docker.io containernetworking-plugins busybox-static docker-registry apache2-utils iptables iproute2)
DOCKERD_LOG=/var/log/berth-dockerd.log
DOCKERD_WAIT=60
CNI_CONF_DIR=/etc/cni/net.d
CNI_CONF="$CNI_CONF_DIR/10-berth.conflist"
CNI_BIN_DIR=/usr/lib/cni # where Debian's containernetworking-plugins puts them

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

step_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		if [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" != "ii "* ]]; then
			missing+=("$p")
		fi
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "packages: all present"
		return
	fi
	export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
	local out
	out=$(mktemp /tmp/berth-apt.XXXXXX)
	if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$out" 2>&1; then
		tail -n 30 "$out" >&2
		rm -f "$out"
		die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$out"
	log "packages: installed ${missing[*]}"
}

dockerd_answers() { docker info >/dev/null 2>&1; }

step_dockerd() {
	if dockerd_answers; then
		log "dockerd: running, engine $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
		return
	fi
	local pid="" started=""
	# A dockerd that is still starting owns /var/run/docker.pid: wait for it
	# rather than start a second one, which would refuse to run.
	if [[ -s /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
		pid=$(cat /var/run/docker.pid)
	else
		# No systemd on these machines: run it in its own session so it
		# outlives this script.
		setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
		pid=$!
		started=1
	fi
	local i
	for ((i = 0; i < DOCKERD_WAIT; i++)); do
		if dockerd_answers; then
			if [[ -n "$started" ]]; then
				log "dockerd: started (pid $pid, log $DOCKERD_LOG), engine $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
			else
				log "dockerd: was starting (pid $pid), now answers"
			fi
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$DOCKERD_LOG" >&2 || true
			die "dockerd exited; see $DOCKERD_LOG"
		fi
		sleep 1
	done
	tail -n 20 "$DOCKERD_LOG" >&2 || true
	die "dockerd did not answer within ${DOCKERD_WAIT}s; see $DOCKERD_LOG"
}

# set_sysctl PATH VALUE: returns 0 when it changed something.
set_sysctl() {
	local f="/proc/sys/$1"
	[[ -e "$f" ]] || return 1
	[[ "$(cat "$f")" == "$2" ]] && return 1
	echo "$2" >"$f"
}

step_kernel() {
	local did=()
	# The bridge plugin's pods reach beyond the host only with forwarding on.
	if set_sysctl net/ipv4/ip_forward 1; then did+=("ip_forward=1"); fi
	# br_netfilter makes bridged pod traffic pass iptables (portmap's DNAT,
	# ipMasq). Docker usually has it loaded already; a missing modprobe or
	# a built-in module is not an error.
	if [[ ! -e /proc/sys/net/bridge ]]; then
		if modprobe br_netfilter 2>/dev/null; then did+=("modprobe br_netfilter"); fi
	fi
	if set_sysctl net/bridge/bridge-nf-call-iptables 1; then did+=("bridge-nf-call-iptables=1"); fi
	if [[ ! -e /proc/sys/net/bridge ]]; then
		log "kernel: ip_forward=$(cat /proc/sys/net/ipv4/ip_forward), br_netfilter not available (portmap hairpin may not work)"
	elif [[ ${#did[@]} -eq 0 ]]; then
		log "kernel: ip_forward and bridge-nf-call-iptables already on"
	else
		log "kernel: set ${did[*]}"
	fi
}

step_cni() {
	local p
	for p in bridge host-local portmap loopback; do
		[[ -x "$CNI_BIN_DIR/$p" ]] || die "CNI plugin $CNI_BIN_DIR/$p missing (package containernetworking-plugins)"
	done
	mkdir -p "$CNI_CONF_DIR"
	# libcni reads *.conf, *.conflist and *.json; any one of them means the
	# host already has a network we must not override.
	local existing
	existing=$(find "$CNI_CONF_DIR" -maxdepth 1 -type f \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) -printf '%f ')
	if [[ -n "$existing" ]]; then
		log "cni: kept existing config in $CNI_CONF_DIR (${existing% }), plugins in $CNI_BIN_DIR"
		return
	fi
	# cniVersion 1.0.0: Debian 12's plugins (1.1.1) support it.
	cat >"$CNI_CONF.tmp" <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "berth0",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.88.0.0/16" }]],
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
	mv "$CNI_CONF.tmp" "$CNI_CONF"
	log "cni: wrote $CNI_CONF (bridge berth0, 10.88.0.0/16, portmap), plugins in $CNI_BIN_DIR"
}

main() {
	[[ $EUID -eq 0 ]] || die "run as root"
	# CI's shell may not have the Go toolchain on PATH; the machine has it here.
	if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
		PATH="$PATH:/usr/local/go/bin"
		export PATH
	fi
	step_packages
	step_dockerd
	step_kernel
	step_cni
	"$ROOT/hack/images.sh"
}

main "$@"
