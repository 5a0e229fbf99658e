#!/bin/bash
# collect-rootfs.sh ROOTFS BINARY
#
# Builds the runtime image's whole filesystem in ROOTFS: the image-proxy
# binary and exactly the shared libraries it and the libvips modules we
# allow load, found with ldd at build time (not listed by hand), plus the
# few files a container needs. The Dockerfile's build stage runs it; the
# final stage is FROM scratch + this tree. deploy/image/rootfs_test.sh runs
# it on a Debian 12 host and serves every format from a chroot into it.
#
# Debian's libvips42 depends on ImageMagick, poppler, OpenSlide and more
# for loaders image-proxy blocks at start; on Debian 12 those (and HEIF/AVIF
# and JPEG XL) are modules libvips dlopens from vips-modules-8.14, which ldd
# on the binary does not see. Only the modules of allowed formats are kept.
set -euo pipefail

rootfs=${1:?usage: collect-rootfs.sh ROOTFS BINARY}
binary=${2:?usage: collect-rootfs.sh ROOTFS BINARY}
here=$(cd "$(dirname "$0")" && pwd)

# libvips modules of the formats transform/formats.go allows: heif
# (AVIF and HEIC in, AVIF out) and jxl (JPEG XL in). magick, poppler
# (PDF) and openslide stay out, and with them most of the image.
KEEP_MODULES=${KEEP_MODULES:-"heif jxl"}
# The user the image runs as (Dockerfile USER, the chart's runAsUser).
UID_GID=${UID_GID:-10001}

vips_version=$(pkg-config --modversion vips)
libdir=$(pkg-config --variable=libdir vips)
moddir="$libdir/vips-modules-${vips_version%.*}"

# Debian 12 is merged-/usr: /bin, /lib and /lib64 are links into /usr.
mkdir -p "$rootfs"/usr/{bin,lib,lib64,local/bin} "$rootfs$libdir" "$rootfs"/etc "$rootfs"/tmp "$rootfs"/dev "$rootfs"/proc \
	"$rootfs"/app/data "$rootfs"/app/cache "$rootfs"/etc/ssl/certs
for d in bin lib lib64; do
	[ -e "$rootfs/$d" ] || ln -s "usr/$d" "$rootfs/$d"
done
chmod 1777 "$rootfs/tmp"

# usr_path: a path with its directory resolved, so /lib/x/libc.so.6 lands
# at /usr/lib/x/libc.so.6 (the name the loader asks for is kept).
usr_path() { echo "$(readlink -f "$(dirname "$1")")/$(basename "$1")"; }

# put SRC [DEST]: copies a file's content (links followed) to DEST in the rootfs.
put() {
	local dest
	dest=$(usr_path "${2:-$1}")
	mkdir -p "$rootfs$(dirname "$dest")"
	cp -L --preserve=mode "$1" "$rootfs$dest"
}

# libs ELF...: every shared library the ELF files load, as ldd resolves
# them; a library ldd cannot find fails the build here, not at run time.
libs() {
	local out
	for f in "$@"; do
		out=$(ldd "$f")
		if grep -q 'not found' <<<"$out"; then
			echo "collect-rootfs: $f: $(grep 'not found' <<<"$out")" >&2
			exit 1
		fi
		awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
	done | sort -u
}

elves=("$binary")
put "$binary" /usr/local/bin/image-proxy
put "$here/../healthcheck.sh" /usr/local/bin/healthcheck
chmod 0755 "$rootfs/usr/local/bin/healthcheck" "$rootfs/usr/local/bin/image-proxy"

for m in $KEEP_MODULES; do
	[ -f "$moddir/vips-$m.so" ] || { echo "collect-rootfs: no $moddir/vips-$m.so" >&2; exit 1; }
	put "$moddir/vips-$m.so"
	elves+=("$moddir/vips-$m.so")
done

# bash and grep run the HEALTHCHECK script; sleep is the chart's preStop.
for tool in bash grep sleep; do
	p=$(command -v "$tool")
	put "$p" "/usr/bin/$tool"
	elves+=("$p")
done
ln -sf bash "$rootfs/usr/bin/sh"

# jemalloc is there so the allocator can be switched with LD_PRELOAD, no
# rebuild (the Dockerfile's ALLOCATOR block).
jemalloc="$libdir/libjemalloc.so.2"
if [ -f "$jemalloc" ]; then
	put "$jemalloc"
	elves+=("$jemalloc")
fi

for lib in $(libs "${elves[@]}"); do
	put "$lib"
done

# CA certificates for S3 and the fallback over TLS.
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"

# Fonts for text in SVG sources: fontconfig's configuration and DejaVu, as
# Debian's libvips42 pulls them in.
if [ -d /etc/fonts ] && [ -d /usr/share/fonts/truetype/dejavu ]; then
	cp -a /etc/fonts "$rootfs/etc/"
	mkdir -p "$rootfs/usr/share/fonts/truetype"
	cp -a /usr/share/fonts/truetype/dejavu "$rootfs/usr/share/fonts/truetype/"
	# conf.d links point into /usr/share/fontconfig/conf.avail.
	if [ -d /usr/share/fontconfig ]; then
		cp -a /usr/share/fontconfig "$rootfs/usr/share/"
	fi
fi

cat >"$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
imageproxy:x:$UID_GID:$UID_GID:image-proxy:/app:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<EOF
root:x:0:
imageproxy:x:$UID_GID:
EOF
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
chown "$UID_GID:$UID_GID" "$rootfs/app/cache"

# The loader's cache, so libraries are found without a search.
cp -a /etc/ld.so.conf /etc/ld.so.conf.d "$rootfs/etc/"
ldconfig -r "$rootfs"
