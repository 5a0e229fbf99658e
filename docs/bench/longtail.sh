#!/usr/bin/env bash
# The long tail: what an origin behind a CDN sees once the first variants
# of a photo are cached. SOURCES distinct 5120x2880 JPEGs (baseline, then
# progressive), each asked at 8 sizes x 2 formats (every URL new, so every
# request misses the result cache, which is on: memory and disk, as
# deployed). The URLs go round-robin over the sources, one variant of each
# source per round, so the requests for one source are a round apart; the
# decode cache's TTL is set to its minimum (1s), so a round is beyond its
# window and no variant reuses another's decode in memory: each starts
# from what is stored. CLIENTS clients (docs/bench/burst), a fresh server
# (and disk cache) per run, the servers alternating within each run:
# image-proxy with its defaults (stored decodes on), image-proxy with
# stored decodes off (IMAGE_PROXY_INTERMEDIATE_SIZE=0), and imgproxy when IMGPROXY_BIN
# names a binary of it (built from its own source outside this repository).
# Prints a markdown section (to $1 if given).
# Used by run.sh; standalone: IMGPROXY_BIN=/path/imgproxy bash docs/bench/longtail.sh [out.md]
# Smoke (seconds): SOURCES=2 RUNS=1 bash docs/bench/longtail.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
SOURCES=${SOURCES:-64}
CLIENTS=${CLIENTS:-4}
CONC=${CONC:-2}
IMGPROXY_BIN=${IMGPROXY_BIN:-}
SIZES=${SIZES:-"160 240 320 480 640 800 960 1200"}
TITLE=${TITLE:-"The long tail, against imgproxy"}
FORMATS=${FORMATS:-"webp jpeg"}
out=${1:-/dev/stdout}
set_label=longtail
. docs/bench/distinct.sh
# longtail_ours ENV...: a fresh disk tier per run, the decode cache's
# lifetime at its minimum.
longtail_ours() {
	rm -rf "$tmp/cache"
	start_ours IMAGE_PROXY_ENABLE_DISK_CACHE=true IMAGE_PROXY_CACHE_DISK_PATH="$tmp/cache" IMAGE_PROXY_DECODE_CACHE_TTL=1s "$@"
}

# urls SERVER KIND: round-robin, one variant of every source per round.
urls() {
	local s f i ext
	for s in $SIZES; do
		for f in $FORMATS; do
			for i in $(seq -w 0 $((SOURCES - 1))); do
				if [ "$1" = imgproxy ]; then
					ext=$f
					[ "$f" = jpeg ] && ext=jpg
					echo "$base/insecure/rs:fit:$s:$s/plain/local:///$2-$i.jpg@$ext"
				else
					echo "$base/$2-$i.jpg?size=$s&format=$f"
				fi
			done
		done
	done
}

# check URL SIZE: the answer is an image whose longer side is SIZE px.
check() {
	curl -fs "$1" -o "$tmp/check"
	local w h
	w=$(vipsheader -f width "$tmp/check")
	h=$(vipsheader -f height "$tmp/check")
	if [ $((w > h ? w : h)) != "$2" ]; then
		echo "answered ${w}x$h ($(file -b "$tmp/check")) for $1, want $2 px" >&2
		exit 1
	fi
}

servers="ours ours-direct"
if [ -n "$IMGPROXY_BIN" ]; then
	servers="$servers imgproxy"
	imgproxy_note="imgproxy: $("$IMGPROXY_BIN" version 2>/dev/null || echo "$IMGPROXY_BIN") with its defaults, MALLOC_ARENA_MAX=2"
else
	imgproxy_note="imgproxy: not measured (set IMGPROXY_BIN to a binary built from its source outside this repository)"
fi
first_size=${SIZES%% *}
: >"$tmp/results"
for kind in b p; do
	for r in $(seq "$RUNS"); do
		for s in $servers; do
			case $s in
			ours) longtail_ours ;;
			ours-direct) longtail_ours IMAGE_PROXY_INTERMEDIATE_SIZE=0 ;;
			imgproxy) start_imgproxy ;;
			esac
			urls "$s" "$kind" >"$tmp/urls"
			check "$(head -1 "$tmp/urls")" "$first_size"
			measure "$kind" "$s"
			stop_server
		done
	done
done

{
	echo "## $TITLE"
	echo
	echo "$SOURCES distinct 5120×2880 sources per kind, each asked at sizes $SIZES as $FORMATS (every URL new), round-robin over the sources"
	echo "(the requests for one source a round apart, the decode cache's TTL at 1 s: beyond its window); $CLIENTS clients (docs/bench/burst);"
	echo "result cache on (memory and disk, a fresh one per run), IMAGE_PROXY_CONCURRENCY=$CONC; image-proxy with its defaults (stored decodes on)"
	echo "and with them off (\`IMAGE_PROXY_INTERMEDIATE_SIZE=0\`); a fresh server per run, the servers alternating within each run; median of $RUNS runs."
	echo "Sources: $source_note. $imgproxy_note."
	echo
	echo "| source | image-proxy req/s | stored decodes off req/s | imgproxy req/s | image-proxy / imgproxy | off / imgproxy | server CPU ms/image (ours, off, imgproxy) | peak RSS MB (ours, off, imgproxy) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	for kind in b p; do
		name=baseline
		[ $kind = p ] && name=progressive
		ours=$(get $kind ours 3)
		off=$(get $kind ours-direct 3)
		img=$(get $kind imgproxy 3)
		echo "| $name | $ours | $off | ${img:-n/a} | $(ratio "$ours" "$img") | $(ratio "$off" "$img") | $(get $kind ours 5), $(get $kind ours-direct 5), $(get $kind imgproxy 5) | $(get $kind ours 4), $(get $kind ours-direct 4), $(get $kind imgproxy 4) |"
	done
	echo
	echo "Every run: \`IMGPROXY_BIN=… bash docs/bench/longtail.sh\` (RUNS=$RUNS SOURCES=$SOURCES CLIENTS=$CLIENTS CONC=$CONC SIZES='$SIZES' FORMATS='$FORMATS')."
} >"$out"
