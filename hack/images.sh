#!/usr/bin/env bash
# Builds, locally, the images berth and its tests use; nothing is pulled:
#   berth.local/pause:3.10            from images/pause (static Go binary, FROM scratch)
#   berth.local/busybox:1.36, :latest from Debian's busybox-static and images/busybox
# Each image carries a label with a hash of its inputs; an image whose label
# matches is left alone, so a second run costs a few `docker image inspect`s.
# Needs: a running dockerd, go, /bin/busybox from busybox-static (hack/setup.sh
# installs them and then calls this script).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/hack/images.sh"

# Keep in step with config.DefaultPauseImage in internal/config/images.go.
PAUSE_IMAGE=berth.local/pause:3.10
BUSYBOX_IMAGE=berth.local/busybox:1.36
BUSYBOX_LATEST=berth.local/busybox:latest
BUSYBOX_BIN=/bin/busybox
LABEL=io.berth.image.inputs
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }

workdir=""
cleanup() { if [[ -n "$workdir" ]]; then rm -rf "$workdir"; fi; }
trap cleanup EXIT

# inputs_hash STRING... -- FILE...: one sha256 over the strings and the files'
# names and contents.
inputs_hash() {
	{
		while [[ $# -gt 0 && "$1" != "--" ]]; do printf 'arg %s\n' "$1"; shift; done
		shift
		local f
		for f in "$@"; do printf 'file %s %s\n' "${f#"$ROOT"/}" "$(sha256sum <"$f" | cut -d' ' -f1)"; done
	} | sha256sum | cut -d' ' -f1
}

# label_of IMAGE: the inputs label of IMAGE, empty when the image is absent.
label_of() {
	docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

# id_of IMAGE: the image ID, empty when absent.
id_of() {
	docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || true
}

# drop_if_dangling ID: remove an image that a rebuild left without any tag.
drop_if_dangling() {
	local id=$1
	[[ -n "$id" ]] || return 0
	if [[ "$(docker image inspect -f '{{ len .RepoTags }}' "$id" 2>/dev/null || echo 1)" == 0 ]]; then
		docker image rm "$id" >/dev/null 2>&1 || true
	fi
}

# run LOGFILE CMD...: run CMD with its output in LOGFILE, shown only on failure.
run() {
	local out=$1
	shift
	if ! "$@" >"$out" 2>&1; then
		cat "$out" >&2
		die "failed: $*"
	fi
}

build_pause() {
	local hash old
	# The Go toolchain and the x/sys version are inputs too; the rest of go.mod is not.
	hash=$(inputs_hash "$(go version)" "$(grep -E '^[[:space:]]*golang.org/x/sys ' "$ROOT/go.mod" || true)" -- \
		"$ROOT/images/pause/main.go" "$ROOT/images/pause/Dockerfile" "$SELF")
	if [[ "$(label_of "$PAUSE_IMAGE")" == "$hash" ]]; then
		log "$PAUSE_IMAGE up to date"
		return
	fi
	old=$(id_of "$PAUSE_IMAGE")
	local ctx="$workdir/pause"
	mkdir -p "$ctx"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/pause" ./images/pause)
	cp "$ROOT/images/pause/Dockerfile" "$ctx/Dockerfile"
	# DOCKER_BUILDKIT=0: the legacy builder, the one both Debian's 20.10 CLI and
	# a newer CLI without the buildx plugin can drive against Engine 20.10.
	run "$workdir/pause-build.log" env DOCKER_BUILDKIT=0 \
		docker build --label "$LABEL=$hash" -t "$PAUSE_IMAGE" "$ctx"
	[[ "$(id_of "$PAUSE_IMAGE")" == "$old" ]] || drop_if_dangling "$old"
	log "$PAUSE_IMAGE built"
}

build_busybox() {
	[[ -x "$BUSYBOX_BIN" ]] || die "$BUSYBOX_BIN missing: apt-get install busybox-static"
	# The image has no libc: a dynamically linked busybox (package busybox) would not run.
	if ldd "$BUSYBOX_BIN" >/dev/null 2>&1; then
		die "$BUSYBOX_BIN is dynamically linked: apt-get install busybox-static"
	fi
	local hash old
	hash=$(inputs_hash -- "$BUSYBOX_BIN" "$ROOT/images/busybox/passwd" "$ROOT/images/busybox/group" "$SELF")
	if [[ "$(label_of "$BUSYBOX_IMAGE")" == "$hash" ]]; then
		if [[ "$(id_of "$BUSYBOX_LATEST")" != "$(id_of "$BUSYBOX_IMAGE")" ]]; then
			docker tag "$BUSYBOX_IMAGE" "$BUSYBOX_LATEST"
			log "$BUSYBOX_IMAGE up to date, $BUSYBOX_LATEST retagged"
		else
			log "$BUSYBOX_IMAGE up to date"
		fi
		return
	fi
	old=$(id_of "$BUSYBOX_IMAGE")
	local oldlatest
	oldlatest=$(id_of "$BUSYBOX_LATEST")

	local rootfs="$workdir/busybox"
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home/berth}
	install -m 0755 "$BUSYBOX_BIN" "$rootfs/bin/busybox"
	# One symlink per applet, where busybox says it lives (bin/sh, usr/bin/env, sbin/ip ...).
	local applet
	while read -r applet; do
		case "$applet" in
		"" | bin/busybox | linuxrc) continue ;;
		esac
		mkdir -p "$rootfs/$(dirname "$applet")"
		ln -sfn /bin/busybox "$rootfs/$applet"
	done < <("$BUSYBOX_BIN" --list-full)
	[[ -L "$rootfs/bin/sh" ]] || die "busybox --list-full gave no bin/sh"
	install -m 0644 "$ROOT/images/busybox/passwd" "$rootfs/etc/passwd"
	install -m 0644 "$ROOT/images/busybox/group" "$rootfs/etc/group"
	chmod 1777 "$rootfs/tmp"
	chmod 0700 "$rootfs/root"
	chown 1000:1000 "$rootfs/home/berth"

	# docker import rather than a Dockerfile: the tar keeps the owners and
	# modes set above (berth's home, the sticky /tmp) exactly.
	tar --numeric-owner -C "$rootfs" -cf "$workdir/busybox.tar" .
	run "$workdir/busybox-import.log" docker import \
		--change 'CMD ["sh"]' \
		--change "ENV PATH=$IMAGE_PATH" \
		--change "LABEL $LABEL=$hash" \
		"$workdir/busybox.tar" "$BUSYBOX_IMAGE"
	docker tag "$BUSYBOX_IMAGE" "$BUSYBOX_LATEST"
	local new
	new=$(id_of "$BUSYBOX_IMAGE")
	[[ "$old" == "$new" ]] || drop_if_dangling "$old"
	[[ "$oldlatest" == "$new" || "$oldlatest" == "$old" ]] || drop_if_dangling "$oldlatest"
	log "$BUSYBOX_IMAGE and $BUSYBOX_LATEST built"
}

main() {
	docker info >/dev/null 2>&1 || die "dockerd does not answer (run hack/setup.sh)"
	command -v go >/dev/null || die "go not found in PATH"
	workdir=$(mktemp -d /tmp/berth-images.XXXXXX)
	build_pause
	build_busybox
}

main "$@"
