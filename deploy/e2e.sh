#!/usr/bin/env bash
# End-to-end: a real Prometheus (Debian's package) scrapes a real image-proxy
# on loopback, with the shipped alert rules loaded. We drive a little
# traffic, then poll Prometheus' HTTP API until it has the request counter
# and a memory-tier cache hit ratio, and until every shipped alert rule has
# been evaluated without error. Run by `make e2e` (part of `make test`).
#
# Needs: go (with libvips-dev for cgo), curl, prometheus. Everything lives in
# a temporary directory and on 127.0.0.1; the trap stops both processes.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
	echo "e2e: FAIL: $*" >&2
	exit 1
}
for tool in go curl prometheus; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (Debian: apt-get install -y prometheus curl; make test-deps does it)"
done

# The server gets only the settings below: none inherited from the caller's
# shell, and no .env (it runs in the temporary directory).
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(IMAGE_PROXY_|RUST_LOG$)' || true)
images="$PWD/data/images"

tmp=$(mktemp -d)
pids=()
cleanup() {
	local status=$?
	if ((status != 0)); then
		for log in "$tmp"/*.log; do
			[ -s "$log" ] || continue
			echo "---- last lines of $(basename "$log")" >&2
			tail -n 15 "$log" >&2
		done
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port: a loopback port nobody listens on now (the kernel picks it).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
			echo "$p"
			return
		}
	done
}

# until_ok SECONDS WHAT CMD...: run CMD every 0.3 s until it succeeds, or fail
# once SECONDS have passed.
until_ok() {
	local limit=$1 what=$2
	local deadline=$((SECONDS + limit))
	shift 2
	until "$@"; do
		((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
		sleep 0.3
	done
}

echo "e2e: building"
go build -o "$tmp/image-proxy" .
proxy_port=$(free_port)
prom_port=$(free_port)
base="http://127.0.0.1:$proxy_port"
prom="http://127.0.0.1:$prom_port"

(cd "$tmp" && IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$proxy_port" IMAGE_PROXY_ROOT_PATH="$images" \
	IMAGE_PROXY_LOG_FORMAT=json IMAGE_PROXY_LOG_LEVEL=warn \
	exec "$tmp/image-proxy" >"$tmp/image-proxy.log" 2>&1) &
pids+=($!)
# The container HEALTHCHECK script, against the real binary.
until_ok 30 "image-proxy /health" env IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$proxy_port" \
	bash deploy/healthcheck.sh >/dev/null

# The shipped rules, next to a config that scrapes our loopback port.
cp deploy/alerts.yml "$tmp/alerts.yml"
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: image-proxy
    static_configs:
      - targets: ["127.0.0.1:$proxy_port"]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
until_ok 60 "Prometheus to be ready" curl -fs -o /dev/null "$prom/-/ready"

# cache_status URL: the X-Cache-Status of a GET, checking it answered 200.
cache_status() {
	local headers
	headers=$(curl -sS -o /dev/null -D - -w '%{http_code}\n' "$1") || fail "GET $1: curl failed"
	[ "$(tail -n 1 <<<"$headers")" = 200 ] || fail "GET $1 answered $(tail -n 1 <<<"$headers")"
	tr -d '\r' <<<"$headers" | awk -F': ' 'tolower($1)=="x-cache-status" {print $2}'
}
expect_status() {
	local got
	got=$(cache_status "$2")
	[ "$got" = "$1" ] || fail "GET $2: X-Cache-Status '$got', want $1"
	echo "e2e: GET ${2#"$base"} -> 200 $got"
}
expect_status BYPASS "$base/rocket.jpg"
expect_status MISS "$base/rocket.jpg?size=100&format=webp"
expect_status HIT-MEMORY "$base/rocket.jpg?size=100&format=webp"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/no-such-image.jpg")
[ "$code" = 404 ] || fail "GET /no-such-image.jpg answered $code, want 404"
echo "e2e: GET /no-such-image.jpg -> 404"

# has_value EXPR: Prometheus returns at least one sample for EXPR.
has_value() {
	curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		grep -q '"status":"success".*"result":\[{'
}
show() {
	echo "e2e: $1 => $(curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$1" |
		grep -o '"value":\[[^]]*\]' | head -n 1)"
}
# "> 0": these series exist at 0 from the first scrape, so their mere
# presence would not show that the requests above were counted.
for expr in \
	'image_proxy_http_requests_total{kind="passthrough",code="200"} > 0' \
	'image_proxy_http_requests_total{kind="transform",code="200"} > 0' \
	'image_proxy_http_requests_total{kind="error",code="404"} > 0' \
	'sum(image_proxy_cache_requests_total{tier="memory",result="hit"}) / sum(image_proxy_cache_requests_total{tier="memory"}) > 0'; do
	until_ok 30 "Prometheus to return a value for $expr" has_value "$expr"
	show "$expr"
done

# Every shipped rule evaluated at least once, and none in error.
rules_evaluated() {
	local body
	body=$(curl -fsS "$prom/api/v1/rules") || return 1
	if grep -q '"health":"err"' <<<"$body"; then
		fail "a shipped alert rule fails to evaluate: $(grep -o '"name":"[^"]*","query[^}]*"health":"err"[^}]*' <<<"$body" | head -n 1)"
	fi
	! grep -q '"health":"unknown"' <<<"$body" && grep -q '"health":"ok"' <<<"$body"
}
until_ok 30 "every alert rule to be evaluated" rules_evaluated
echo "e2e: $(curl -fsS "$prom/api/v1/rules" | grep -o '"health":"ok"' | wc -l) alert rules evaluated, none in error"
echo "e2e: ok"
