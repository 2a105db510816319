#!/usr/bin/env bash
# test-image.sh: build the obolus image and run the binary in its root
# filesystem, on a machine that can build images but cannot pull base images
# or run containers (docs/deploy.md, Container).
#
#  1. A minimal Debian bookworm root filesystem from Debian packages
#     (mmdebstrap --variant=minbase, with bookworm-slim's dpkg exclusions),
#     cached as a tarball between runs on the same machine.
#  2. podman import, under the Containerfile's base image name
#     (docker.io/library/debian:bookworm-slim), into a podman store of this
#     run's own (CONTAINERS_STORAGE_CONF), so the machine's images are never
#     touched and FROM resolves with --pull=never.
#  3. make image, with that store: the Containerfile as users build it.
#  4. The image's configuration: user, entry point, port, volume, labels.
#  5. A container created, not started; its root filesystem mounted
#     (podman mount: the image's layers and a writable layer, as a container
#     would see them). In a mount namespace of its own, /proc and /dev are
#     mounted there, as a container runtime would, and every shell is
#     covered with an empty file. Then, with chroot as user 65532:65532 and
#     only HOME and PATH set: obolus gen and obolus batch on a small workload
#     (JSON Lines, then Parquet), obolus summary. Each batch must exit 0 and
#     print its reconciliation line. That proves the glibc, libstdc++ and
#     every file the binary needs are in the image, that it needs no shell,
#     and that user 65532 can write its store under /var/lib/obolus.
#
# Needs root, podman, mmdebstrap, unshare and chroot; without them it prints
# SKIP and exits 0. .ci/run installs podman and mmdebstrap and runs it after
# make test; make test does not run it. Run it as `make test-image`.
#
# Environment: OBOLUS_IMAGE_TEST_CACHE (default /tmp/obolus-image-test-cache),
# where the root filesystem tarball is kept; OBOLUS_IMAGE_TEST_MIRROR, a
# mirror URI or sources file for mmdebstrap (default: the host's
# /etc/apt/sources.list.d/debian.sources when it names bookworm, else
# mmdebstrap's default, deb.debian.org with updates and security);
# OBOLUS_IMAGE_TEST_KEEP=1 keeps the run's directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() { echo "SKIP test-image: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (mmdebstrap, podman mount, chroot)"
for c in podman mmdebstrap unshare chroot; do
	command -v "$c" >/dev/null || skip "$c is not on PATH (Debian: apt-get install podman mmdebstrap)"
done

t0=$(date +%s)
step() { echo "--- test-image: $* ($(($(date +%s) - t0)) s)"; }
fail() { echo "FAIL test-image: $*" >&2; exit 1; }

base=docker.io/library/debian:bookworm-slim
image=localhost/obolus:test
uid=65532

work=$(mktemp -d "${TMPDIR:-/tmp}/obolus-image-test.XXXXXX")
export CONTAINERS_STORAGE_CONF=$work/storage.conf
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
ctr=
cleanup() {
	set +e
	if [ -n "$ctr" ]; then podman umount "$ctr" >/dev/null; podman rm -f "$ctr" >/dev/null; fi
	podman rmi -a -f >/dev/null 2>&1
	# Whatever overlay mounts podman left under this run's store.
	grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "${OBOLUS_IMAGE_TEST_KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# 1. The root filesystem.
cache=${OBOLUS_IMAGE_TEST_CACHE:-/tmp/obolus-image-test-cache}
rootfs=$cache/bookworm-minbase.tar
mkdir -p "$cache"
if [ -s "$rootfs" ] && [ -n "$(find "$rootfs" -mtime -7)" ]; then
	step "bookworm root filesystem from the cache, $rootfs"
else
	mirror=()
	if [ -n "${OBOLUS_IMAGE_TEST_MIRROR:-}" ]; then
		mirror=("$OBOLUS_IMAGE_TEST_MIRROR")
	elif grep -qs '^Suites:.*bookworm' /etc/apt/sources.list.d/debian.sources; then
		mirror=(/etc/apt/sources.list.d/debian.sources)
	fi
	step "mmdebstrap --variant=minbase bookworm ${mirror[*]:-(default mirror)}"
	# The dpkg exclusions are bookworm-slim's: no manuals, documentation
	# (copyright files kept) or translations.
	mmdebstrap --quiet --variant=minbase --format=tar \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		bookworm "$rootfs.part" "${mirror[@]}"
	mv "$rootfs.part" "$rootfs"
fi

# 2. The base image.
step "podman import as $base"
podman import --quiet "$rootfs" "$base" >/dev/null

# 3. The image, as make image builds it.
step "make image IMAGE=$image"
make --no-print-directory image IMAGE="$image" IMAGE_BUILDER=podman IMAGE_BUILD_FLAGS=--pull=never

# 4. Its configuration.
step "image configuration"
field() { podman image inspect --format "$1" "$image"; }
check() { # check WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got $2, want $3"
	echo "ok $1: $2"
}
check user "$(field '{{.Config.User}}')" "$uid:$uid"
check entrypoint "$(field '{{json .Config.Entrypoint}}')" '["/usr/local/bin/obolus"]'
check ports "$(field '{{json .Config.ExposedPorts}}')" '{"8080/tcp":{}}'
check volumes "$(field '{{json .Config.Volumes}}')" '{"/var/lib/obolus":{}}'
check workdir "$(field '{{.Config.WorkingDir}}')" /var/lib/obolus
check title "$(field '{{index .Config.Labels "org.opencontainers.image.title"}}')" obolus
revision=$(field '{{index .Config.Labels "org.opencontainers.image.revision"}}')
check revision "$revision" "$(git rev-parse HEAD 2>/dev/null || echo unknown)"
size=$(field '{{.Size}}')
base_size=$(podman image inspect --format '{{.Size}}' "$base")
echo "image size $((size / 1000000)) MB: base $((base_size / 1000000)) MB + obolus layers $(((size - base_size) / 1000000)) MB"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-120

# 5. The binary in the image's root filesystem.
step "root filesystem of a created container"
ctr=$(podman create "$image")
root=$(podman mount "$ctr")
for f in usr/local/bin/obolus etc/ssl/certs/ca-certificates.crt usr/share/zoneinfo/UTC; do
	[ -s "$root/$f" ] || fail "/$f is missing from the image"
done
check "owner and mode of /usr/local/bin/obolus" "$(stat -c '%u:%g %a' "$root/usr/local/bin/obolus")" "0:0 755"
check "owner of /var/lib/obolus" "$(stat -c %u:%g "$root/var/lib/obolus")" "$uid:$uid"
check "passwd entry" "$(grep "^obolus:" "$root/etc/passwd")" "obolus:x:$uid:$uid::/var/lib/obolus:/usr/sbin/nologin"

cat >"$work/run-in-image.sh" <<'EOF'
#!/bin/sh
# In a private mount namespace: what a container runtime provides, then the
# commands as user 65532 in the root filesystem $1.
set -eu
root=$1
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
# The shells themselves, not their links; a path that leads out of the root
# filesystem (an absolute link read from here) is left alone.
for sh in bin/bash bin/dash bin/rbash usr/bin/bash usr/bin/dash usr/bin/rbash; do
	p=$(realpath -m "$root/$sh")
	case $p in "$root"/*)
		if [ -f "$p" ] && ! mountpoint -q "$p"; then mount --bind /dev/null "$p"; fi ;;
	esac
done
chroot=$(command -v chroot)
in_image() {
	echo "\$ obolus $*"
	env -i HOME=/var/lib/obolus PATH=/usr/local/bin:/usr/bin:/bin \
		"$chroot" --userspec=65532:65532 "$root" /usr/local/bin/obolus "$@"
}
if env -i "$chroot" --userspec=65532:65532 "$root" /bin/sh -c true 2>/dev/null; then
	echo "a shell ran in the image although every shell is covered" >&2; exit 1
fi
in_image --version
for format in jsonl parquet; do
	d=/var/lib/obolus/wl-$format
	in_image gen --out "$d" --format "$format" --agent-requests 1500 --users 80 --duration 24h --seed 7 >"$root/tmp/gen-$format.log"
	tail -n 3 "$root/tmp/gen-$format.log"
	in_image batch --config "$d/obolus.yaml" --log-level warn | tee "$root/tmp/batch-$format.log"
	grep -q '^reconciled: ' "$root/tmp/batch-$format.log" || { echo "batch ($format) printed no reconciliation line" >&2; exit 1; }
	in_image summary --config "$d/obolus.yaml" | head -n 12
done
EOF
chmod +x "$work/run-in-image.sh"
step "obolus gen, batch and summary as $uid:$uid with chroot"
unshare --mount --propagation private "$work/run-in-image.sh" "$root" || fail "obolus did not run in the image's root filesystem"
stores=$(find "$root/var/lib/obolus" -name '*.duckdb' -user "$uid" | wc -l)
[ "$stores" -ge 2 ] || fail "no DuckDB store owned by $uid under /var/lib/obolus"
echo "ok $stores DuckDB stores under /var/lib/obolus, owned by $uid"

step "PASS (image $((size / 1000000)) MB)"
