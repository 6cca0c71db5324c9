#!/usr/bin/env bash
# Local image registries for integration tests (Debian's docker-registry).
#
#   hack/registry.sh start DIR   start two registries with their config, data
#                                and logs in DIR, and print on stdout:
#                                  REGISTRY_AUTH=127.0.0.1:PORT    htpasswd auth, user berth, password berth
#                                  REGISTRY_NOAUTH=127.0.0.1:PORT  no auth
#   hack/registry.sh stop DIR    stop them and remove DIR
#
# Both listen on 127.0.0.1 on a port the kernel picks (addr :0; the port is
# read back from the registry's log), plain HTTP: Docker treats 127.0.0.0/8
# registries as insecure by default. Starting again on a DIR whose registries
# still run prints the same lines. Everything but those lines goes to stderr,
# and the registries keep none of the caller's file descriptors, so a caller
# reading stdout to EOF is not held up.
set -euo pipefail

USER_NAME=berth
USER_PASSWORD=berth
MARKER=.berth-registry # stop removes only a DIR that start made
START_WAIT=20          # seconds
started=""             # set once start has succeeded; the EXIT trap cleans up otherwise

die() { printf 'registry: error: %s\n' "$*" >&2; exit 1; }
usage() { printf 'usage: %s start|stop DIR\n' "$0" >&2; exit 2; }

# running NAME: true when DIR's registry NAME runs.
running() {
	local pid
	pid=$(cat "$DIR/$1.pid" 2>/dev/null) || return 1
	[[ -n "$pid" ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-registry ]]
}

# write_config NAME AUTH: DIR/NAME.yml for a registry with data in DIR/NAME.
write_config() {
	local name=$1 auth=$2 secret
	secret=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	mkdir -p "$DIR/$name"
	{
		cat <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$DIR/$name"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
		if [[ "$auth" == yes ]]; then
			cat <<EOF
auth:
  htpasswd:
    realm: berth-test-registry
    path: "$DIR/htpasswd"
EOF
		fi
	} >"$DIR/$name.yml"
}

# launch NAME: start DIR's registry NAME in its own session, with no fd of ours.
launch() {
	local name=$1
	setsid docker-registry serve "$DIR/$name.yml" >"$DIR/$name.log" 2>&1 </dev/null &
	echo $! >"$DIR/$name.pid"
}

# port_of NAME: wait for the registry to listen and print its port.
port_of() {
	local name=$1 port="" i
	for ((i = 0; i < START_WAIT * 10; i++)); do
		port=$(sed -n 's/.*msg="listening on 127\.0\.0\.1:\([0-9][0-9]*\)".*/\1/p' "$DIR/$name.log" | tail -n 1)
		if [[ -n "$port" ]]; then
			printf '%s\n' "$port"
			return 0
		fi
		if ! running "$name"; then
			cat "$DIR/$name.log" >&2 || true
			printf 'registry: error: registry %s exited\n' "$name" >&2
			return 1
		fi
		sleep 0.1
	done
	printf 'registry: error: registry %s did not listen within %ss\n' "$name" "$START_WAIT" >&2
	return 1
}

# stop_one NAME: TERM, then KILL after 10 s.
stop_one() {
	local name=$1 pid i
	running "$name" || return 0
	pid=$(cat "$DIR/$name.pid")
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		running "$name" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		running "$name" || return 0
		sleep 0.1
	done
	die "registry $name (pid $pid) does not stop"
}

cmd_start() {
	command -v docker-registry >/dev/null || die "docker-registry not found (apt-get install docker-registry; hack/setup.sh does)"
	command -v htpasswd >/dev/null || die "htpasswd not found (apt-get install apache2-utils; hack/setup.sh does)"
	if [[ -f "$DIR/$MARKER" && -s "$DIR/env" ]] && running auth && running noauth; then
		cat "$DIR/env"
		return
	fi
	if [[ -e "$DIR" && ! -f "$DIR/$MARKER" && -n "$(ls -A "$DIR")" ]]; then
		die "$DIR exists, is not empty and was not made by $0"
	fi
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	touch "$DIR/$MARKER"
	# Anything half-started is stopped and DIR removed on the way out.
	trap 'if [[ -z "$started" ]]; then cmd_stop >/dev/null 2>&1 || true; fi' EXIT
	stop_one auth
	stop_one noauth

	printf '%s' "$USER_PASSWORD" | htpasswd -niB "$USER_NAME" >"$DIR/htpasswd" 2>/dev/null
	write_config auth yes
	write_config noauth no
	launch auth
	launch noauth
	local auth_port noauth_port
	auth_port=$(port_of auth)
	noauth_port=$(port_of noauth)
	printf 'REGISTRY_AUTH=127.0.0.1:%s\nREGISTRY_NOAUTH=127.0.0.1:%s\n' "$auth_port" "$noauth_port" >"$DIR/env"
	started=1
	cat "$DIR/env"
}

cmd_stop() {
	[[ -e "$DIR" ]] || return 0
	[[ -f "$DIR/$MARKER" ]] || die "$DIR was not made by $0; not removing it"
	stop_one auth
	stop_one noauth
	rm -rf "$DIR"
}

[[ $# -eq 2 && -n "$2" ]] || usage
DIR=$2
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac
