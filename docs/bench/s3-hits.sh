#!/usr/bin/env bash
# Memory hits of a transform whose original is in S3 (a real MinIO on
# loopback) against the same hit of a local original, in one run. Before
# the identity cache every hit of an S3 original sent a HEAD to the bucket;
# IMAGE_PROXY_S3_STAT_MAX_AGE=0 still does, and is measured beside them.
# Prints a Markdown section.
#
#   bash docs/bench/s3-hits.sh          # standalone
#   s3-hits.sh BINDIR ROOT              # from run.sh: binaries and sources prepared
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${HIT_DURATION:-3s}
CONNS=${HIT_CONNS:-16}
corpus=../shared/corpus

tmp=$(mktemp -d)
if [ $# -eq 0 ]; then
	go build -o "$tmp/image-proxy" .
	bindir=$tmp root=$tmp/root
	mkdir -p "$root"
	if [ -f "$corpus/volna-baseline-5120x2880.jpg" ]; then
		cp "$corpus/volna-baseline-5120x2880.jpg" "$root/baseline.jpg"
	else
		cp data/images/hubble_deep_field.jpg "$root/baseline.jpg"
	fi
else
	bindir=$1 root=$2
fi
go build -o "$tmp/s3put" ./docs/bench/s3put
minio=${MINIO_BIN:-$(go env GOPATH | cut -d: -f1)/bin/minio}
[ -x "$minio" ] || { echo "no MinIO server at $minio: make minio" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: make bench-deps" >&2; exit 1; }

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

port0=$((20000 + RANDOM % 20000))
s3=http://127.0.0.1:$port0
MINIO_ROOT_USER=benchbench MINIO_ROOT_PASSWORD=benchbenchbench MINIO_UPDATE=off MINIO_BROWSER=off \
	"$minio" server "$tmp/minio" --address "127.0.0.1:$port0" --console-address "127.0.0.1:$((port0 + 9))" --quiet >>"$tmp/minio.log" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 60))
until curl -fs "$s3/minio/health/live" >/dev/null 2>&1; do
	[ $SECONDS -lt $deadline ] || { echo "MinIO did not start" >&2; cat "$tmp/minio.log" >&2; exit 1; }
	sleep 0.1
done
"$tmp/s3put" "$s3" benchbench benchbenchbench photos originals/baseline.jpg "$root/baseline.jpg"

serve() { # PORT env...
	local port=$1
	shift
	env MALLOC_ARENA_MAX=2 IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$port" IMAGE_PROXY_LOG_LEVEL=warn \
		IMAGE_PROXY_CONCURRENCY=2 "$@" "$bindir/image-proxy" >>"$tmp/server.log" 2>&1 &
	pids+=($!)
	until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.1; done
}
s3env=(IMAGE_PROXY_ROOT_PATH="$tmp/no-root" IMAGE_PROXY_S3_ENDPOINT="$s3" IMAGE_PROXY_S3_BUCKET=photos
	IMAGE_PROXY_S3_ACCESS_KEY=benchbench IMAGE_PROXY_S3_SECRET_KEY=benchbenchbench IMAGE_PROXY_S3_PREFIX=originals/)
local_url=http://127.0.0.1:$((port0 + 1)) s3_url=http://127.0.0.1:$((port0 + 2)) head_url=http://127.0.0.1:$((port0 + 3))
serve $((port0 + 1)) IMAGE_PROXY_ROOT_PATH="$root"
local_pid=$!
serve $((port0 + 2)) "${s3env[@]}"
s3_pid=$!
serve $((port0 + 3)) "${s3env[@]}" IMAGE_PROXY_S3_STAT_MAX_AGE=0
head_pid=$!

q="baseline.jpg?size=400&format=webp"
status() { curl -fs -D - -o /dev/null "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}'; }
for u in "$local_url" "$s3_url" "$head_url"; do
	curl -fs -o /dev/null "$u/$q"
	[ "$(status "$u/$q")" = HIT-MEMORY ] || { echo "$u/$q: not a memory hit" >&2; exit 1; }
done
measure() { # URL: req/s
	local out
	out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "$1")
	echo "$out" | awk '/^Requests\/sec/{print $2}'
}
: >"$tmp/rounds"
for r in $(seq "$ROUNDS"); do
	echo "$r $(measure "$local_url/$q") $(measure "$s3_url/$q") $(measure "$head_url/$q")" >>"$tmp/rounds"
done
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v c="$1" '{print $c}' "$tmp/rounds" | median; }
ratio() { awk -v a="$1" -v b="$2" '{print $a/$b}' "$tmp/rounds" | median | xargs printf "%.2f"; }
cat <<MD
### Memory hits of S3 originals

The same memory hit (a 400 px WebP of a 5120×2880 JPEG, ~3 KB) with the
original in a local directory and in a MinIO bucket on loopback, side by
side; $ROUNDS rounds of \`wrk -t2 -c$CONNS -d$DURATION\`, medians (ratios per round).
\`IMAGE_PROXY_S3_STAT_MAX_AGE=0\` asks the bucket on every hit (a HEAD), as
every hit did before the identity cache.

| original | req/s | of local |
| --- | ---: | ---: |
| local directory | $(col 2) | 1.00 |
| S3, identity cache (default \`10s\`) | $(col 3) | $(ratio 3 2) |
| S3, \`IMAGE_PROXY_S3_STAT_MAX_AGE=0\` (a HEAD per hit) | $(col 4) | $(ratio 4 2) |

Command: \`ROUNDS=$ROUNDS bash docs/bench/s3-hits.sh\`.
MD
