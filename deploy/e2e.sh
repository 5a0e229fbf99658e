#!/usr/bin/env bash
# End-to-end: a real Prometheus (Debian's package) scrapes a real image-proxy
# on loopback; we drive traffic and wait until Prometheus' API shows the
# request counter and a cache hit ratio. Run by `make e2e` (part of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# free_port: a random loopback port nothing answers on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
# wait_for URL PATTERN SECONDS: poll until the body matches.
wait_for() {
	local deadline=$((SECONDS + $3))
	until curl -fsS "$1" 2>/dev/null | grep -q "$2"; do
		if ((SECONDS > deadline)); then
			echo "e2e: timed out waiting for $2 at $1" >&2
			return 1
		fi
		sleep 0.5
	done
}

go build -o "$tmp/image-proxy" .
proxy_port=$(free_port)
prom_port=$(free_port)

IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$proxy_port" IMAGE_PROXY_ROOT_PATH=./data/images \
	IMAGE_PROXY_LOG_LEVEL=warn "$tmp/image-proxy" >"$tmp/proxy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$proxy_port/health" '"status":"ok"' 20

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: image-proxy
    static_configs:
      - targets: ["127.0.0.1:$proxy_port"]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$prom_port/-/ready" 'Ready' 30

base="http://127.0.0.1:$proxy_port"
curl -fsS -o /dev/null "$base/rocket.jpg"
for _ in 1 2 3; do
	curl -fsS -o /dev/null "$base/rocket.jpg?size=100&format=webp"
done
status=$(curl -fsS -o /dev/null -D - "$base/rocket.jpg?size=100&format=webp" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')
[ "$status" = "HIT-MEMORY" ] || { echo "e2e: expected HIT-MEMORY, got '$status'" >&2; exit 1; }
curl -s -o /dev/null "$base/missing.jpg" || true

query() { curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1"; }
# poll_query EXPR SECONDS: until the result vector is non-empty.
poll_query() {
	local deadline=$((SECONDS + $2))
	until query "$1" | grep -q '"result":\[{'; do
		if ((SECONDS > deadline)); then
			echo "e2e: Prometheus never returned a value for: $1" >&2
			cat "$tmp/prometheus.log" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "e2e: $1 => $(query "$1" | grep -o '"value":\[[^]]*\]' | head -1)"
}
poll_query 'image_proxy_http_requests_total{kind="transform",code="200"}' 30
poll_query 'image_proxy_http_requests_total{kind="error",code="404"}' 30
poll_query 'sum(image_proxy_cache_requests_total{tier="memory",result="hit"}) / sum(image_proxy_cache_requests_total{tier="memory"})' 30
echo "e2e: ok"
