#!/bin/bash
# make image-check: build the image and run it exactly as the Helm chart's
# Deployment runs it (its user, read-only root, no capabilities, no
# privilege escalation, /tmp as a tmpfs, the disk tier on a volume, the
# chart's environment: deploy/helm/charttest/cmd/docker-args prints those
# flags from `helm template`), then check /health, the HEALTHCHECK, the
# preStop sleep, a transform and, after a restart, a disk-tier hit.
#
# Needs a Docker engine and the pinned helm (make helm); not part of
# `make test`, whose machines have no engine (deploy/image_test.go runs the
# same tree from a chroot instead).
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${IMAGE:-image-proxy:check}
name=image-proxy-check-$$
volume=image-proxy-check-cache-$$
export HELM=${HELM:-$(go env GOPATH | cut -d: -f1)/bin/helm}

cleanup() {
	docker rm -f "$name" >/dev/null 2>&1 || true
	docker volume rm "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
	echo "image-check: $*" >&2
	docker logs "$name" 2>&1 | tail -20 >&2 || true
	exit 1
}

docker build --build-arg VERSION="$(git describe --tags --always 2>/dev/null || echo dev)" -t "$tag" .
echo "image size: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"

mapfile -t flags < <(cd deploy/helm/charttest && go run ./cmd/docker-args -cache-volume "$volume")
[ "${#flags[@]}" -gt 5 ] || fail "no docker flags from the chart"
# A new named volume takes the owner of the image's /app/cache (10001), as
# fsGroup makes an emptyDir writable in the pod.
docker volume create "$volume" >/dev/null

start() {
	docker run -d --name "$name" "${flags[@]}" \
		-v "$PWD/data/images:/app/data:ro" -p 127.0.0.1::8000 "$tag" serve >/dev/null
	port=$(docker port "$name" 8000/tcp | head -1 | sed 's/.*://')
	base="http://127.0.0.1:$port"
	for _ in $(seq 1 120); do
		curl -fsS "$base/health" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	fail "no /health within 60 s"
}

start
curl -fsS "$base/health" | grep -q '"status":"ok"' || fail "/health does not say ok"
docker exec "$name" /usr/local/bin/healthcheck || fail "the HEALTHCHECK script fails in the container"
docker exec "$name" /bin/sleep 1 || fail "the chart's preStop (/bin/sleep) fails in the container"

url="$base/rocket.jpg?size=200&format=webp"
headers=$(curl -fsS -D - -o /tmp/image-check.webp "$url") || fail "GET $url"
grep -qi '^content-type: image/webp' <<<"$headers" || fail "transform: not image/webp: $headers"
grep -qi '^x-cache-status: MISS' <<<"$headers" || fail "transform: not a MISS: $headers"
[ "$(head -c 4 /tmp/image-check.webp)" = RIFF ] || fail "transform: the body is not a WebP file"
for f in avif jpeg png gif; do
	curl -fsS -o /dev/null "$base/coffee.avif?size=100&format=$f" || fail "coffee.avif as $f"
done

# SIGTERM drains (docker stop waits up to the chart's grace period), and
# the restarted container answers from the disk tier on the same volume.
docker stop -t 45 "$name" >/dev/null
docker rm "$name" >/dev/null
start
curl -fsS -D - -o /dev/null "$url" | grep -qi '^x-cache-status: HIT-DISK' || fail "after a restart: no HIT-DISK"
echo "image-check: ok ($tag runs as the chart says: /health, HEALTHCHECK, preStop, transforms, disk hit)"
