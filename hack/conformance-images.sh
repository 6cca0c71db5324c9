#!/usr/bin/env bash
# Stand-ins for every image critest v1.37.0 pulls, built here from Debian
# packages (no registry is reachable), for hack/conformance.sh:
#
#   hack/conformance-images.sh names   every image reference, one a line
#   hack/conformance-images.sh hash    a hash of every input: images pushed
#                                      under the same hash are current
#   hack/conformance-images.sh push    build them, push them (the names must
#                                      resolve to the harness's registry), and
#                                      remove the local copies
#
# What each stand-in has is what the specs that use it check (cri-tools
# pkg/validate):
#   - the busybox base is Debian's dynamic `busybox` (package busybox, fetched
#     with apt-get download, never installed) with its libraries, one hard link
#     per applet in /bin as in upstream's image, and upstream's /etc/passwd and
#     /etc/group. Not busybox-static: its shell runs applets in-process, so a
#     masked /bin/ls would still run (MaskedPaths spec); not symlinks: masking
#     /bin/ls would mask /bin/busybox. ipcs and pgrep, which Debian's build
#     lacks, are the host's (util-linux, procps) with their libraries.
#   - test-image-* (gcr.io/k8s-staging-cri-tools): the base plus a file named
#     after the image (images/image-test), so different names are different
#     images; test-image-tags:1..3 one image under three tags; the user images
#     with USER 1002, www-data, 1003:1004, www-data:1004; predefined-group with
#     default-user (1000) in group-defined-in-image (50000), USER 1000.
#     test-image-digest is not built: its spec pins upstream's manifest digest.
#   - e2e-test-images/nginx:1.14-2: Debian's nginx on the base, as the HostPID,
#     PodPID and ContainerPID specs want: /var/run/nginx.pid, processes named
#     nginx, a master whose cmdline says "master process".
#   - e2e-test-images/httpd:2.4.39-4 (also the web server image, see
#     hack/conformance.sh): busybox httpd on :80, "httpd" in its log.
#   - hostnet-nginx-<arch>: busybox httpd on :12003.
#   - e2e-test-images/nonewprivs:1.3: test/conformance/nnp setuid root, USER 1000.
#   - registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9: one image (berth's
#     images/pause program), so both names share an image ID.
# Each image gets a label of its own, so none shares an ID with an image
# outside this set (a spec removes images by ID).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/hack/conformance-images.sh"
export PATH=$PATH:/usr/local/go/bin

ARCH=$(dpkg --print-architecture)
CRI_TOOLS=gcr.io/k8s-staging-cri-tools
E2E=registry.k8s.io/e2e-test-images
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL=io.berth.conformance.image
DEBS=(busybox nginx)
HOST_BINS=(/usr/bin/ipcs /usr/bin/pgrep)

BASE_IMAGES=("$E2E/busybox:1.29-2")
FILE_IMAGES=(test-image-latest:latest test-image-1:latest test-image-2:latest test-image-3:latest
	test-image-tag:test test-image-tag:all)
TAGS_IMAGES=("$CRI_TOOLS/test-image-tags:1" "$CRI_TOOLS/test-image-tags:2" "$CRI_TOOLS/test-image-tags:3")
declare -A USER_IMAGES=(
	[test-image-user-uid]=1002
	[test-image-user-username]=www-data
	[test-image-user-uid-group]=1003:1004
	[test-image-user-username-group]=www-data:1004
)
PREDEFINED_GROUP_IMAGE="$CRI_TOOLS/test-image-predefined-group:latest"
NGINX_IMAGE="$E2E/nginx:1.14-2"
HTTPD_IMAGE="$E2E/httpd:2.4.39-4"
HOSTNET_IMAGE="$CRI_TOOLS/hostnet-nginx-$ARCH:latest"
NNP_IMAGE="$E2E/nonewprivs:1.3"
PAUSE_IMAGES=(registry.k8s.io/pause:3.9 k8s.gcr.io/pause:3.9)

log() { printf 'conformance-images: %s\n' "$*" >&2; }
die() { printf 'conformance-images: error: %s\n' "$*" >&2; exit 1; }

names() {
	local n
	printf '%s\n' "${BASE_IMAGES[@]}"
	for n in "${FILE_IMAGES[@]}"; do printf '%s\n' "$CRI_TOOLS/$n"; done
	printf '%s\n' "${TAGS_IMAGES[@]}"
	for n in "${!USER_IMAGES[@]}"; do printf '%s\n' "$CRI_TOOLS/$n:latest"; done
	printf '%s\n' "$PREDEFINED_GROUP_IMAGE" "$NGINX_IMAGE" "$HTTPD_IMAGE" "$HOSTNET_IMAGE" "$NNP_IMAGE" "${PAUSE_IMAGES[@]}"
}

# candidate PACKAGE: the version apt would fetch (from the local lists).
candidate() {
	apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p'
}

inputs_hash() {
	{
		sha256sum "$SELF" "$ROOT/test/conformance/nnp/main.go" "$ROOT/images/pause/main.go" | cut -d' ' -f1
		go version
		local p b
		for p in "${DEBS[@]}"; do printf '%s %s\n' "$p" "$(candidate "$p")"; done
		for b in "${HOST_BINS[@]}" /lib/x86_64-linux-gnu/libc.so.6; do
			[[ -e "$b" ]] && sha256sum "$b" | cut -d' ' -f1
		done
	} | sha256sum | cut -d' ' -f1
}

# with_libs ROOTFS FILE...: copy each FILE into ROOTFS at its own path with
# every shared library ldd finds for it.
with_libs() {
	local rootfs=$1 f lib
	shift
	for f in "$@"; do
		if ldd "$f" 2>&1 | grep -q 'not found'; then
			ldd "$f" >&2 || true
			die "$f needs a library this host lacks (see above; apt-get install it)"
		fi
		while read -r lib; do
			[[ -e "$rootfs$lib" ]] && continue
			mkdir -p "$rootfs$(dirname "$lib")"
			cp -L "$lib" "$rootfs$lib"
		done < <(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true)
	done
}

# fetch: the Debian packages, unpacked under $work/deb/PACKAGE.
fetch() {
	local p
	mkdir -p "$work/deb"
	(cd "$work/deb" && apt-get download "${DEBS[@]}" >"$work/apt.log" 2>&1) || {
		cat "$work/apt.log" >&2
		die "apt-get download ${DEBS[*]} failed (apt-get update first?)"
	}
	for p in "${DEBS[@]}"; do
		mkdir -p "$work/deb/$p"
		dpkg-deb -x "$work/deb/${p}_"*.deb "$work/deb/$p"
	done
}

base_rootfs() {
	local r="$work/base" bb="$work/deb/busybox/bin/busybox" a
	mkdir -p "$r"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,usr/sbin,var/spool/mail,var/www}
	install -m 0755 "$bb" "$r/bin/busybox"
	with_libs "$r" "$bb"
	while read -r a; do
		case "$a" in "" | busybox | linuxrc) continue ;; esac
		ln "$r/bin/busybox" "$r/bin/$a"
	done < <("$bb" --list)
	[[ -f "$r/bin/sh" && -f "$r/bin/ls" ]] || die "busybox --list gave no sh or ls"
	for a in "${HOST_BINS[@]}"; do
		[[ -x "$a" ]] || die "$a missing (packages util-linux, procps)"
		install -m 0755 "$a" "$r$a"
		with_libs "$r" "$a"
	done
	# upstream busybox's accounts
	cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
	cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
}

# rootfs NAME: a fresh copy of the base at $work/img/NAME; prints its path.
rootfs() {
	local r="$work/img/$1"
	rm -rf "$r"
	mkdir -p "$work/img"
	cp -a "$work/base" "$r"
	printf '%s\n' "$r"
}

# import_image ROOTFS REF CHANGE...: docker import the tree as REF with the
# Dockerfile instructions CHANGE.
import_image() {
	local r=$1 ref=$2 c args=()
	shift 2
	for c in "ENV PATH=$IMAGE_PATH" "LABEL $LABEL=$ref" "$@"; do args+=(--change "$c"); done
	tar --numeric-owner -C "$r" -cf "$r.tar" .
	docker import "${args[@]}" "$r.tar" "$ref" >>"$work/docker.log" 2>&1 || {
		cat "$work/docker.log" >&2
		die "docker import $ref failed"
	}
	rm -rf "$r" "$r.tar"
}

build_all() {
	local r n name tag
	r=$(rootfs busybox)
	import_image "$r" "${BASE_IMAGES[0]}" 'CMD ["sh"]'

	for n in "${FILE_IMAGES[@]}"; do
		name=${n%%:*} tag=${n##*:}
		r=$(rootfs "$name-$tag")
		# images/image-test ADDs a file named after the image (the tag for test-image-tag)
		if [[ "$name" == test-image-tag ]]; then touch "$r/$tag"; else touch "$r/$name"; fi
		import_image "$r" "$CRI_TOOLS/$n" 'CMD ["sh"]'
	done

	r=$(rootfs tags)
	touch "$r/same-image"
	import_image "$r" "${TAGS_IMAGES[0]}" 'CMD ["sh"]'
	for n in "${TAGS_IMAGES[@]:1}"; do docker tag "${TAGS_IMAGES[0]}" "$n"; done

	for n in "${!USER_IMAGES[@]}"; do
		r=$(rootfs "$n")
		import_image "$r" "$CRI_TOOLS/$n:latest" 'CMD ["sh"]' "USER ${USER_IMAGES[$n]}"
	done

	# images/image-predefined-group: adduser -u 1000 -D default-user,
	# addgroup -g 50000 group-defined-in-image, addgroup default-user group-defined-in-image
	r=$(rootfs predefined-group)
	echo 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh' >>"$r/etc/passwd"
	printf '%s\n' 'default-user:x:1000:' 'group-defined-in-image:x:50000:default-user' >>"$r/etc/group"
	mkdir -p "$r/home/default-user"
	chown 1000:1000 "$r/home/default-user"
	import_image "$r" "$PREDEFINED_GROUP_IMAGE" 'CMD ["sh"]' "USER 1000"

	r=$(rootfs nginx)
	install -m 0755 "$work/deb/nginx/usr/sbin/nginx" "$r/usr/sbin/nginx"
	with_libs "$r" "$work/deb/nginx/usr/sbin/nginx"
	mkdir -p "$r"/{etc/nginx,run,usr/share/nginx/html,var/lib/nginx,var/log/nginx}
	ln -s ../run "$r/var/run"
	cat >"$r/etc/nginx/nginx.conf" <<'EOF'
user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
    access_log /dev/stdout;
    server {
        listen 80;
        root /usr/share/nginx/html;
        index index.html;
    }
}
EOF
	echo '<h1>Welcome to nginx!</h1>' >"$r/usr/share/nginx/html/index.html"
	import_image "$r" "$NGINX_IMAGE" 'CMD ["nginx", "-g", "daemon off;"]' "EXPOSE 80"

	r=$(rootfs httpd)
	mkdir -p "$r/usr/local/apache2/htdocs" "$r/usr/local/bin"
	echo '<html><body><h1>It works!</h1></body></html>' >"$r/usr/local/apache2/htdocs/index.html"
	cat >"$r/usr/local/bin/httpd-foreground" <<'EOF'
#!/bin/sh
echo "httpd: busybox httpd listening on :80"
exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs
EOF
	chmod 0755 "$r/usr/local/bin/httpd-foreground"
	import_image "$r" "$HTTPD_IMAGE" 'CMD ["httpd-foreground"]' "EXPOSE 80"

	r=$(rootfs hostnet)
	mkdir -p "$r/usr/share/nginx/html"
	echo '<h1>Welcome to nginx!</h1>' >"$r/usr/share/nginx/html/index.html"
	import_image "$r" "$HOSTNET_IMAGE" 'CMD ["httpd", "-f", "-v", "-p", "12003", "-h", "/usr/share/nginx/html"]' "EXPOSE 12003"

	r=$(rootfs nonewprivs)
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$r/usr/local/bin/nnp" ./test/conformance/nnp)
	chown 0:0 "$r/usr/local/bin/nnp"
	chmod 4755 "$r/usr/local/bin/nnp"
	import_image "$r" "$NNP_IMAGE" 'CMD ["/usr/local/bin/nnp"]' "USER 1000"

	# images/pause's program on nothing else, as upstream's pause
	r="$work/img/pause"
	mkdir -p "$r"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$r/pause" ./images/pause)
	import_image "$r" "${PAUSE_IMAGES[0]}" 'ENTRYPOINT ["/pause"]' "USER 65535:65535"
	docker tag "${PAUSE_IMAGES[0]}" "${PAUSE_IMAGES[1]}"
}

push() {
	command -v apt-get >/dev/null || die "apt-get not found"
	docker info >/dev/null 2>&1 || die "dockerd does not answer"
	work=$(mktemp -d /tmp/berth-conformance-images.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	local ref pushed=0
	fetch
	base_rootfs
	build_all
	while read -r ref; do
		docker push "$ref" >>"$work/docker.log" 2>&1 || {
			tail -n 20 "$work/docker.log" >&2
			die "docker push $ref failed"
		}
		pushed=$((pushed + 1))
	done < <(names)
	while read -r ref; do docker image rm "$ref" >/dev/null 2>&1 || true; done < <(names)
	log "built and pushed $pushed images"
}

case "${1:-}" in
names) names ;;
hash) inputs_hash ;;
push) push ;;
*) die "usage: $0 names|hash|push" ;;
esac
