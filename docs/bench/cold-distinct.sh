#!/usr/bin/env bash
# Cold renders of distinct sources: what an origin behind a CDN mostly
# sees. SOURCES distinct 5120x2880 JPEGs (baseline, then progressive), each
# asked once at 400 px as WebP by CLIENTS clients (docs/bench/burst), the
# result cache off. Servers, a fresh one per run, alternating within each
# run: image-proxy with its defaults (the decode cache on), image-proxy with
# the decode cache off, and imgproxy when IMGPROXY_BIN names a binary of it
# (built from its own source outside this repository; a yardstick only).
# Prints a markdown section (to $1 if given); FLOOR (img/s of
# BenchmarkFloor, from run.sh) adds the ratio to the floor.
# Used by run.sh; standalone: IMGPROXY_BIN=/path/imgproxy bash docs/bench/cold-distinct.sh [out.md]
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
SOURCES=${SOURCES:-96}
CLIENTS=${CLIENTS:-4}
CONC=${CONC:-2}
FLOOR=${FLOOR:-}
IMGPROXY_BIN=${IMGPROXY_BIN:-}
out=${1:-/dev/stdout}
set_label=cold
. docs/bench/distinct.sh

urls() { # SERVER KIND
	local i
	for i in $(seq -w 0 $((SOURCES - 1))); do
		if [ "$1" = imgproxy ]; then
			echo "$base/insecure/rs:fit:400:400/plain/local:///$2-$i.jpg@webp"
		else
			echo "$base/$2-$i.jpg?size=400&format=webp"
		fi
	done
}

servers="ours ours-off"
if [ -n "$IMGPROXY_BIN" ]; then
	servers="$servers imgproxy"
	imgproxy_note="imgproxy: $("$IMGPROXY_BIN" version 2>/dev/null || echo "$IMGPROXY_BIN") with its defaults (IMGPROXY_WORKERS = 2 × cores), MALLOC_ARENA_MAX=2"
else
	imgproxy_note="imgproxy: not measured (set IMGPROXY_BIN to a binary built from its source outside this repository)"
fi
: >"$tmp/results"
for kind in b p; do
	for r in $(seq "$RUNS"); do
		for s in $servers; do
			case $s in
			ours) start_ours IMAGE_PROXY_ENABLE_CACHE=false ;;
			ours-off) start_ours IMAGE_PROXY_ENABLE_CACHE=false IMAGE_PROXY_DECODE_CACHE_SIZE=0 ;;
			imgproxy) start_imgproxy ;;
			esac
			urls "$s" "$kind" >"$tmp/urls"
			# The first URL checks the answer: a WebP whose longer side is 400 px.
			curl -fs "$(head -1 "$tmp/urls")" -o "$tmp/check"
			w=$(vipsheader -f width "$tmp/check")
			h=$(vipsheader -f height "$tmp/check")
			if [ "$(head -c 12 "$tmp/check" | tail -c 4)" != WEBP ] || [ $((w > h ? w : h)) != 400 ]; then
				echo "$s answered ${w}x$h ($(file -b "$tmp/check")) for $(head -1 "$tmp/urls"), want a 400 px WebP" >&2
				exit 1
			fi
			measure "$kind" "$s"
			stop_server
		done
	done
done

{
	echo "## Cold renders of distinct sources, against imgproxy"
	echo
	echo "$SOURCES distinct 5120×2880 sources per kind, each asked once at 400 px as WebP by $CLIENTS clients (docs/bench/burst), result cache off;"
	echo "image-proxy with its defaults (decode cache on) and with \`IMAGE_PROXY_DECODE_CACHE_SIZE=0\`, IMAGE_PROXY_CONCURRENCY=$CONC; a fresh server per run, the servers alternating within each run; median of $RUNS runs."
	echo "Sources: $source_note. $imgproxy_note."
	echo
	echo "| source | image-proxy req/s | decode cache off req/s | imgproxy req/s | image-proxy / imgproxy | off / imgproxy | image-proxy / floor | server CPU ms/image (ours, off, imgproxy) | peak RSS MB (ours, imgproxy) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for kind in b p; do
		name=baseline
		[ $kind = p ] && name=progressive
		ours=$(get $kind ours 3)
		off=$(get $kind ours-off 3)
		img=$(get $kind imgproxy 3)
		floor=n/a
		[ -n "$FLOOR" ] && [ $kind = b ] && floor=$(awk -v a="$ours" -v b="$FLOOR" 'BEGIN{printf "%.0f %%", 100*a/b}')
		echo "| $name | $ours | $off | ${img:-n/a} | $(ratio "$ours" "$img") | $(ratio "$off" "$img") | $floor | $(get $kind ours 5), $(get $kind ours-off 5), $(get $kind imgproxy 5) | $(get $kind ours 4), $(get $kind imgproxy 4) |"
	done
	echo
	[ -n "$FLOOR" ] && echo "Floor (\`BenchmarkFloor\`, baseline, same run): $FLOOR img/s."
	echo "Every run: \`IMGPROXY_BIN=… bash docs/bench/cold-distinct.sh\` (RUNS=$RUNS SOURCES=$SOURCES CLIENTS=$CLIENTS CONC=$CONC)."
} >"$out"
