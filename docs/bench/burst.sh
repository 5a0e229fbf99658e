#!/usr/bin/env bash
# Publish burst: 64 distinct 5120x2880 JPEGs (baseline, then progressive),
# each asked at 400, 800 and 1200 px as WebP (then also as AVIF: 6 variants),
# the variants of a few sources interleaved, by 8 clients against the real
# binary with the result cache off; the decode cache on and off alternate
# within one run of this script. Prints a markdown section (to $1 if given).
# Used by run.sh; standalone: bash docs/bench/burst.sh [out.md]
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}         # runs per configuration; medians are reported
SOURCES=${SOURCES:-64}  # distinct sources per set
CLIENTS=${CLIENTS:-8}
CONC=${CONC:-2}
WINDOW=${WINDOW:-4}     # sources whose variants are shuffled together
ON_SIZE=${ON_SIZE:-134217728} # IMAGE_PROXY_DECODE_CACHE_SIZE when on
out=${1:-/dev/stdout}
set_label=burst
. docs/bench/distinct.sh
start_server() { # env assignments...
	env MALLOC_ARENA_MAX=2 IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$port" IMAGE_PROXY_ROOT_PATH="$tmp/root" \
		IMAGE_PROXY_LOG_LEVEL=warn IMAGE_PROXY_CONCURRENCY="$CONC" IMAGE_PROXY_QUEUE_DEPTH=1024 \
		IMAGE_PROXY_QUEUE_TIMEOUT=120s IMAGE_PROXY_ENABLE_CACHE=false "$@" "$tmp/image-proxy" >>"$tmp/server.log" 2>&1 &
	server_pid=$!
	until curl -fs "$base/health" >/dev/null 2>&1; do sleep 0.1; done
}

# urls KIND FORMATS...: every variant of every source once; the variants of
# WINDOW sources at a time in a shuffled order (a fixed seed: the same list
# for every run and configuration).
urls() {
	local kind=$1 i f s
	shift
	for i in $(seq -w 0 $((SOURCES - 1))); do
		for f in "$@"; do
			for s in 400 800 1200; do
				echo "$((10#$i / WINDOW)) $base/$kind-$i.jpg?size=$s&format=$f"
			done
		done
	done | awk 'BEGIN{srand(14)} {print $1, rand(), $2}' | sort -k1,1n -k2,2g | cut -d' ' -f3
}

: >"$tmp/results"
SETS=${SETS:-"b:webp p:webp b:webp+avif p:webp+avif"}
for set in $SETS; do
	set -- $(echo "$set" | tr ':+' '  ')
	name="$1-$(echo "${@:2}" | tr ' ' '+')"
	urls "$@" >"$tmp/urls"
	for r in $(seq "$RUNS"); do
		for reuse in on off; do
			size=$ON_SIZE
			[ $reuse = off ] && size=0
			start_server IMAGE_PROXY_DECODE_CACHE_SIZE=$size
			res=$("$tmp/burst" -c "$CLIENTS" "$tmp/urls")
			hits=$(curl -fs "$base/metrics" | awk '/^image_proxy_decode_cache_requests_total\{result="hit"\}/{print $2}')
			echo "$name $reuse $(echo "$res" | cut -d' ' -f3) $(hwm_mb) $hits" | tee -a "$tmp/results" >&2
			stop_server
		done
	done
done

get() { awk -v n="$1" -v r="$2" -v c="$3" '$1==n && $2==r {print $c}' "$tmp/results" | median; }
{
	echo "## Publish burst: one decode for several variants"
	echo
	echo "$SOURCES distinct 5120×2880 sources per set, each asked once at 400, 800 and 1200 px (DPR 1–3 of a 400 px slot) as WebP, or as WebP and AVIF (6 variants);"
	echo "the variants of $WINDOW sources at a time in shuffled order; $CLIENTS clients (docs/bench/burst), each taking the next URL when free;"
	echo "result cache off, IMAGE_PROXY_CONCURRENCY=$CONC; the decode cache on (128 MB, 10 s) and off (\`IMAGE_PROXY_DECODE_CACHE_SIZE=0\`) alternate, a fresh server per run; median of $RUNS runs."
	echo "Sources: $source_note."
	echo
	echo "| set | req/s reuse on | req/s reuse off | on / off | peak RSS MB on | peak RSS MB off | decode reuses (of requests) |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	for set in $(echo "$SETS" | tr ':' '-'); do
		on=$(get "$set" on 3)
		off=$(get "$set" off 3)
		n=$((SOURCES * 3 * $(echo "$set" | awk -F'[-+]' '{print NF-1}')))
		echo "| $set | $on | $off | $(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.2f×", a/b}') | $(get "$set" on 4) | $(get "$set" off 4) | $(get "$set" on 5) of $n |"
	done
	echo
	echo "b = baseline, p = progressive JPEG. Every run: \`bash docs/bench/burst.sh\` (RUNS=$RUNS SOURCES=$SOURCES CLIENTS=$CLIENTS CONC=$CONC)."
} >"$out"
