# image-proxy: build with `docker build --build-arg VERSION=$(git describe --tags --always) .`
#
# Plain Dockerfile syntax, so the legacy builder works too (Debian 12's
# Docker 20.10 uses it unless DOCKER_BUILDKIT=1): no RUN --mount, no
# COPY --chmod, no heredocs. And no "# syntax=" line, which makes BuildKit
# fetch a frontend image from a registry even when every base image is local
# (air-gapped builds fail); the built-in frontend does all this file needs.
#
# Both stages are Debian 12 (bookworm): the committed libvips bindings were
# generated for bookworm's libvips 8.14, so build and runtime must match it.

FROM golang:1.26-bookworm AS build
# libvips-dev brings libvips42 and every library it loads; the final stage
# takes only those the binary and the allowed loaders need (below).
# libjemalloc2 (0.9 MB) is carried so the allocator can be switched with an
# environment variable, no rebuild.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvips-dev pkg-config libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Modules in their own layer, before the sources: without cache mounts this
# is what spares a re-download when only code changed. (The compile itself,
# libvips bindings included, starts from scratch on every source change.)
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# cgo is required (libvips), so the binary cannot be fully static: it links
# libvips and glibc dynamically and needs the same Debian release at run
# time. -trimpath and -s -w keep it small and reproducible.
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/image-proxy .
# The runtime filesystem: the binary, the shared libraries it and the
# libvips modules of allowed formats (heif, jxl) load, found by ldd, bash
# and grep for the HEALTHCHECK, sleep for Kubernetes' preStop, CA
# certificates, fonts for SVG text, the user and the app directories.
# Debian's libvips42 also depends on ImageMagick, poppler, OpenSlide and
# their libraries for loaders image-proxy blocks at start: left out, the
# image weighs about 170 MB instead of 447 MB (deploy/image_test.go builds
# this tree and serves every format from it).
RUN bash deploy/image/collect-rootfs.sh /rootfs /out/image-proxy

# Nothing but that tree: every file comes from the Debian 12 build stage,
# so the libraries match the bindings (bookworm's libvips 8.14).
FROM scratch
COPY --from=build /rootfs/ /

# ---- ALLOCATOR (the one line to flip) -------------------------------------
# libvips allocates and frees large pixel buffers from many threads; with
# glibc's default per-thread arenas RSS keeps climbing under load (1.2 GB
# after 150 s of progressive JPEGs). Measured (docs/bench/soak-notes.md):
#   MALLOC_ARENA_MAX=2 holds RSS at the working set at full speed, and
#   image-proxy calls malloc_trim when renders go idle;
#   jemalloc returns even more memory but cost 28 % of cold-render throughput.
# Chosen: MALLOC_ARENA_MAX=2. To use jemalloc instead, replace the line below
# with (path for amd64; arm64 is /usr/lib/aarch64-linux-gnu/...):
#   ENV LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
ENV MALLOC_ARENA_MAX=2
# ---------------------------------------------------------------------------

ENV PATH=/usr/local/bin:/usr/bin \
    IMAGE_PROXY_BIND_ADDRESS=0.0.0.0:8000 \
    IMAGE_PROXY_ROOT_PATH=/app/data \
    IMAGE_PROXY_CACHE_DISK_PATH=/app/cache

# imageproxy (collect-rootfs.sh writes /etc/passwd), numeric so that
# Kubernetes' runAsNonRoot can check it; the Helm chart runs the same ids.
USER 10001:10001
WORKDIR /app
EXPOSE 8000
# No curl/wget in the image and no healthcheck subcommand in the binary:
# deploy/healthcheck.sh speaks HTTP over bash's /dev/tcp (bash and grep
# are in the image for it), reading the port from IMAGE_PROXY_BIND_ADDRESS.
COPY deploy/healthcheck.sh /usr/local/bin/healthcheck
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/healthcheck"]
# SIGTERM drains for IMAGE_PROXY_SHUTDOWN_TIMEOUT (30 s): give `docker stop`
# a longer grace period (compose.yaml sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/image-proxy"]
CMD ["serve"]
