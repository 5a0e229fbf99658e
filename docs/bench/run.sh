#!/usr/bin/env bash
# make bench: Go benchmarks (the libvips floor) and wrk load against the real
# binary on loopback, with the ceiling (a bare Fiber handler) in the same run
# (docs/bench/hits.sh, which also runs alone: `make bench-hits`).
# Writes docs/benchmarks.md and docs/bench-*.png. About 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}             # wrk runs per workload; medians are reported
DURATION=${DURATION:-10s}   # per wrk run
CONC=${CONC:-2}             # IMAGE_PROXY_CONCURRENCY and floor parallelism
corpus=../shared/corpus
tmp=$(mktemp -d)
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/image-proxy" .
go build -o "$tmp/ceiling" ./docs/bench/ceiling
go build -o "$tmp/plot" ./docs/bench/plot

# Sources: the corpus photographs when present (never copied into the repo).
mkdir -p "$tmp/root"
if [ -f "$corpus/volna-baseline-5120x2880.jpg" ]; then
	cp "$corpus/volna-baseline-5120x2880.jpg" "$tmp/root/baseline.jpg"
	cp "$corpus/volna-5120x2880.jpg" "$tmp/root/progressive.jpg"
	source_note="../shared/corpus: volna-baseline-5120x2880.jpg (baseline), volna-5120x2880.jpg (progressive), a PNG made from the baseline"
else
	cp data/images/hubble_deep_field.jpg "$tmp/root/baseline.jpg"
	cp data/images/coffee-progressive.jpg "$tmp/root/progressive.jpg"
	source_note="data/images (the corpus was not available): hubble_deep_field.jpg, coffee-progressive.jpg"
fi
vips copy "$tmp/root/baseline.jpg" "$tmp/root/photo.png"
cp data/images/rocket.jpg "$tmp/root/small.jpg"

port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"

# The server runs as deployed: two malloc arenas (docs/soak.md).
start_server() { # env assignments...
	env MALLOC_ARENA_MAX=2 IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$port" IMAGE_PROXY_ROOT_PATH="$tmp/root" \
		IMAGE_PROXY_LOG_LEVEL=warn IMAGE_PROXY_CONCURRENCY="$CONC" IMAGE_PROXY_QUEUE_DEPTH=1024 \
		IMAGE_PROXY_CACHE_DISK_PATH="$tmp/cache" "$@" "$tmp/image-proxy" >>"$tmp/server.log" 2>&1 &
	server_pid=$!
	until curl -fs "$base/health" >/dev/null 2>&1; do sleep 0.1; done
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
rss_mb() { awk '/^VmRSS/{printf "%.0f", $2/1024}' "/proc/$server_pid/status"; }
hwm_mb() { awk '/^VmHWM/{printf "%.0f", $2/1024}' "/proc/$server_pid/status"; }

# wrk_runs NAME CONNECTIONS URL: RUNS runs; appends "name req/s p50ms p99ms MB/s" medians.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'; }
to_mb() { awk '{v=$1; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1024} else if (v ~ /MB$/) {sub(/MB/,"",v)} else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1024} else {sub(/B/,"",v); v/=1048576}; printf "%.1f", v}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wrk_runs() { # NAME CONNECTIONS URL [wrk args...]
	local name=$1 conns=$2 url=$3 r out
	shift 3
	: >"$tmp/runs"
	for r in $(seq "$RUNS"); do
		out=$(wrk -t2 -c"$conns" -d"$DURATION" --latency "$@" "$url")
		echo "$(echo "$out" | awk '/^Requests\/sec/{print $2}') \
$(echo "$out" | awk '$1=="50%"{print $2}' | to_ms) \
$(echo "$out" | awk '$1=="99%"{print $2}' | to_ms) \
$(echo "$out" | awk '/^Transfer\/sec/{print $2}' | to_mb)" >>"$tmp/runs"
	done
	echo "$name $(cut -d' ' -f1 "$tmp/runs" | median) $(cut -d' ' -f2 "$tmp/runs" | median) $(cut -d' ' -f3 "$tmp/runs" | median) $(cut -d' ' -f4 "$tmp/runs" | median)" >>"$tmp/results"
}

: >"$tmp/results"
: >"$tmp/rss"

echo "== floor (Go benchmarks, libvips directly, $CONC in parallel)"
floor() { # FILE → img/s median of RUNS
	local i
	for i in $(seq "$RUNS"); do
		BENCH_SOURCE="$1" go test ./transform -run '^$' -bench '^BenchmarkFloor$' -benchtime 40x -cpu "$CONC" |
			awk '/img\/s/{for (i=1;i<=NF;i++) if ($(i+1)=="img/s") print $i}'
	done | median
}
floor_baseline=$(floor "$tmp/root/baseline.jpg")
echo "floor baseline: $floor_baseline img/s"

echo "== cold renders of distinct sources, against imgproxy (docs/bench/cold-distinct.sh)"
[ -n "${IMGPROXY_BIN:-}" ] || echo "IMGPROXY_BIN is not set: imgproxy is left out (build it from its own source outside this repository)"
RUNS=$RUNS CONC=$CONC FLOOR="$floor_baseline" IMGPROXY_BIN="${IMGPROXY_BIN:-}" bash docs/bench/cold-distinct.sh "$tmp/distinct.md"

echo "== the long tail, against imgproxy (docs/bench/longtail.sh)"
RUNS=$RUNS CONC=$CONC IMGPROXY_BIN="${IMGPROXY_BIN:-}" bash docs/bench/longtail.sh "$tmp/longtail.md"
echo "== lone first renders with the result cache on (docs/bench/longtail.sh, one variant per source)"
RUNS=$RUNS CONC=$CONC IMGPROXY_BIN="${IMGPROXY_BIN:-}" SIZES=400 FORMATS=webp \
	TITLE="Lone first renders with the result cache on, against imgproxy" bash docs/bench/longtail.sh "$tmp/lone.md"

echo "== idle"
start_server IMAGE_PROXY_ENABLE_CACHE=false
sleep 2
echo "idle-after-start $(rss_mb)" >>"$tmp/rss"

echo "== cold transforms (cache off)"
for w in "cold-webp baseline.jpg format=webp" "cold-webp-progressive progressive.jpg format=webp" \
	"cold-avif baseline.jpg format=avif" "cold-jpeg baseline.jpg format=jpeg" "cold-png-source photo.png format=webp"; do
	set -- $w
	stop_server
	# The decode cache off: cold.lua asks one file at many sizes, which
	# would otherwise share one decode (the publish burst section below).
	start_server IMAGE_PROXY_ENABLE_CACHE=false IMAGE_PROXY_DECODE_CACHE_SIZE=0
	wrk_runs "$1" $((CONC * 2)) "$base/$2?$3" -s docs/bench/cold.lua
	echo "$1-peak $(hwm_mb)" >>"$tmp/rss"
done
sleep 3
echo "idle-after-cold $(rss_mb)" >>"$tmp/rss"
stop_server

echo "== hits against the ceiling (docs/bench/hits.sh)"
bash docs/bench/hits.sh "$tmp" "$tmp/root" >"$tmp/hits.md"

echo "== memory hits of S3 originals against local ones (docs/bench/s3-hits.sh)"
bash docs/bench/s3-hits.sh "$tmp" "$tmp/root" >"$tmp/s3-hits.md"

echo "== passthrough"
start_server IMAGE_PROXY_ENABLE_CACHE=true
wrk_runs passthrough-large 16 "$base/progressive.jpg"
wrk_runs passthrough-small 16 "$base/small.jpg"
stop_server

echo "== cost against megapixels (Render, cold, $CONC in parallel)"
echo "mp,ms" >"$tmp/mp.csv"
for w in 1280 1920 2560 3840 5120; do
	vips thumbnail "$tmp/root/baseline.jpg" "$tmp/mp-$w.jpg[Q=90]" "$w"
	mp=$(vipsheader -f width "$tmp/mp-$w.jpg" | awk -v h="$(vipsheader -f height "$tmp/mp-$w.jpg")" '{printf "%.1f", $1*h/1e6}')
	ms=$(for i in $(seq "$RUNS"); do
		BENCH_SOURCE="$tmp/mp-$w.jpg" go test ./transform -run '^$' -bench '^BenchmarkRender/webp$' -benchtime 30x -cpu 1 |
			awk '/ns\/op/{printf "%.1f\n", $3/1e6}'
	done | median)
	echo "$mp,$ms" >>"$tmp/mp.csv"
done
"$tmp/plot" xy docs/bench-megapixels.png "Cold transform cost (JPEG -> 400 px WebP, one core)" "source megapixels" "ms per image" "$tmp/mp.csv"

echo "== AVIF speed against WebP (Render, 400 px, one core)"
echo "speed ms bytes" >"$tmp/avif"
webp_ms=$(BENCH_SOURCE="$tmp/root/baseline.jpg" go test ./transform -run '^$' -bench '^BenchmarkRender/webp$' -benchtime 20x -cpu 1 | awk '/ns\/op/{printf "%.1f", $3/1e6}')
for s in 4 6 7 8 9; do
	ms=$(BENCH_AVIF_SPEED=$s BENCH_SOURCE="$tmp/root/baseline.jpg" go test ./transform -run '^$' -bench '^BenchmarkRender/avif$' -benchtime 10x -cpu 1 | awk '/ns\/op/{printf "%.1f", $3/1e6}')
	start_server IMAGE_PROXY_ENABLE_CACHE=false IMAGE_PROXY_AVIF_SPEED=$s
	bytes=$(curl -fs "$base/baseline.jpg?size=400&format=avif" | wc -c)
	stop_server
	echo "$s $ms $bytes" >>"$tmp/avif"
done
start_server IMAGE_PROXY_ENABLE_CACHE=false
webp_bytes=$(curl -fs "$base/baseline.jpg?size=400&format=webp" | wc -c)
stop_server

echo "== EXIF orientation (Render, 5120x2880 baseline JPEG, tagged 1 or 6, one core, median of 5)"
orient_ms() {
	BENCH_SOURCE="$tmp/root/baseline.jpg" go test ./transform -run '^$' -bench "^BenchmarkRenderOrientation/orientation-$1\$" \
		-benchtime 10x -count 5 -cpu 1 | awk '/ns\/op/{print $3/1e6}' | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]}'
}
o1_ms=$(orient_ms 1)
o6_ms=$(orient_ms 6)

echo "== warm: one decode per source against a render per variant (8 variants, median of 5)"
warm_ms() { # FILE SUB → ms per source, median of 5
	BENCH_SOURCE="$1" go test ./proxy -run '^$' -bench "^BenchmarkWarmOneDecode/$2\$" -benchtime 5x -count 5 -cpu "$CONC" |
		awk '/ns\/op/{print $3/1e6}' | median
}
wb_many=$(warm_ms "$tmp/root/baseline.jpg" warm)
wb_sep=$(warm_ms "$tmp/root/baseline.jpg" separate)
wp_many=$(warm_ms "$tmp/root/progressive.jpg" warm)
wp_sep=$(warm_ms "$tmp/root/progressive.jpg" separate)
wb_off=$(warm_ms "$tmp/root/baseline.jpg" separate-no-decode-cache)
wp_off=$(warm_ms "$tmp/root/progressive.jpg" separate-no-decode-cache)
live_p50() { # SUB → median live latency (ms) of 3 runs
	for i in 1 2 3; do
		BENCH_SOURCE="$tmp/root/baseline.jpg" go test ./proxy -run '^$' -bench "^BenchmarkLiveBesideWarm/$1\$" -benchtime 40x -cpu "$CONC" |
			awk '{for (i=1;i<=NF;i++) if ($(i+1)=="p50-ms") print $i}'
	done | median
}
live_alone=$(live_p50 alone)
live_warm=$(live_p50 beside-warm)
echo "== tracing off and on (memory hit, handler without sockets, $CONC cores, median of 5)"
go test ./proxy -run '^$' -bench '^BenchmarkMemoryHitTracing$' -benchtime 2s -count 5 -cpu "$CONC" >"$tmp/tracing"
trace_stat() { # off|on column(3=ns/op 5=B/op 7=allocs/op)
	awk -v n="BenchmarkMemoryHitTracing/$1" -v c="$2" 'index($1, n) == 1 {print $c}' "$tmp/tracing" | median
}
trace_off_ns=$(trace_stat off 3)
trace_on_ns=$(trace_stat on 3)
echo "== lone variant: decode cache off, on and missed, on and hit (Render, 400 px WebP, one core, median of 5)"
lone_ms() { # FILE CASE
	BENCH_SOURCE="$1" go test ./transform -run '^$' -bench "^BenchmarkLoneVariant/$2\$" -benchtime 10x -count 5 -cpu 1 |
		awk '/ns\/op/{print $3/1e6}' | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]}'
}
for f in baseline progressive; do
	for c in off miss hit; do
		echo "$f $c $(lone_ms "$tmp/root/$f.jpg" $c)" >>"$tmp/lone"
	done
done

echo "== publish burst (docs/bench/burst.sh)"
RUNS=$RUNS CONC=$CONC bash docs/bench/burst.sh "$tmp/burst.md"

# ---- report ----
get() { awk -v n="$1" -v c="$2" '$1==n{print $c}' "$tmp/results"; }
rss() { awk -v n="$1" '$1==n{print $2}' "$tmp/rss"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.0f %%", 100*a/b; else print "n/a" }'; }
{
	echo "# Benchmarks"
	echo
	echo "Generated by \`make bench\` (docs/bench/run.sh) on $(date -u +%Y-%m-%d)."
	echo
	echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, shared and noisy: compare ratios within one run"
	echo "- libvips $(pkg-config --modversion vips), $(go version | cut -d' ' -f3), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
	echo "- sources: $source_note"
	echo "- server: IMAGE_PROXY_CONCURRENCY=$CONC; cold runs with the cache off and a different size (300-499 px) on every request (docs/bench/cold.lua, so nothing coalesces), \`wrk -t2 -c$((CONC * 2)) -d$DURATION --latency -s docs/bench/cold.lua\`; hits and passthrough \`wrk -t2 -c16\`"
	echo "- the server runs as deployed, with MALLOC_ARENA_MAX=2; the floor runs with glibc's defaults"
	echo "- every number is the median of $RUNS runs"
	echo
	echo "## Cold transforms against the floor"
	echo
	echo "The floor is \`BenchmarkFloor\`: jpegload_buffer shrink=8 → lanczos3 resize → WebP q80 through the bindings, $CONC goroutines, no HTTP."
	echo
	echo "| workload | req/s | p50 ms | p99 ms | peak RSS MB | server / floor |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for w in cold-webp cold-webp-progressive cold-avif cold-jpeg cold-png-source; do
		fl=""
		case $w in cold-webp | cold-jpeg) fl=$(ratio "$(get $w 2)" "$floor_baseline") ;; esac
		echo "| $w | $(get $w 2) | $(get $w 3) | $(get $w 4) | $(rss $w-peak) | $fl |"
	done
	echo
	echo "Floor (baseline JPEG → 400 px WebP): **$floor_baseline img/s**."
	echo
	cat "$tmp/hits.md"
	echo
	cat "$tmp/s3-hits.md"
	echo
	echo "## Passthrough"
	echo
	echo "| workload | req/s | p50 ms | p99 ms | MB/s |"
	echo "| --- | --- | --- | --- | --- |"
	for w in passthrough-large passthrough-small; do
		echo "| $w | $(get $w 2) | $(get $w 3) | $(get $w 4) | $(get $w 5) |"
	done
	echo
	echo "## Memory"
	echo
	echo "| when | RSS MB |"
	echo "| --- | --- |"
	echo "| idle after start | $(rss idle-after-start) |"
	echo "| idle after the cold runs | $(rss idle-after-cold) |"
	echo
	echo "## Cost against source size"
	echo
	echo "![cold transform cost against megapixels](bench-megapixels.png)"
	echo
	echo "| megapixels | ms per image (one core) |"
	echo "| --- | --- |"
	tail -n +2 "$tmp/mp.csv" | tr ',' ' ' | while read -r mp ms; do echo "| $mp | $ms |"; done
	echo
	echo "## AVIF speed"
	echo
	echo "400 px from the baseline photo, one core. WebP: $webp_ms ms, $webp_bytes bytes."
	echo
	echo "| IMAGE_PROXY_AVIF_SPEED | ms | × WebP | bytes |"
	echo "| --- | --- | --- | --- |"
	tail -n +2 "$tmp/avif" | while read -r s ms b; do
		echo "| $s | $ms | $(awk -v a="$ms" -v b="$webp_ms" 'BEGIN{printf "%.1f", a/b}') | $b |"
	done
	echo
	echo "## EXIF orientation"
	echo
	echo "The baseline photo → 400 px WebP, as stored (orientation 1) and tagged 6 (a phone portrait), one core, median of 5."
	echo "The rotation runs after the resize on the in-memory output, so shrink-on-load and sequential reading stay."
	echo
	echo "| orientation | ms | × orientation 1 |"
	echo "| --- | --- | --- |"
	echo "| 1 | $o1_ms | 1.00 |"
	echo "| 6 | $o6_ms | $(awk -v a="$o6_ms" -v b="$o1_ms" 'BEGIN{printf "%.2f", a/b}') |"
	echo
	echo "## Warm: one decode per source"
	echo
	echo "\`BenchmarkWarmOneDecode\`: the 8 variants \`image-proxy warm --sizes 360,720,1200,2200 --formats webp,jpeg\` makes of one photo,"
	echo "stored in the disk tier: by warm (one read, RenderMany: one decode per distinct load, 2 here) and by the server's render path once per variant,"
	echo "with the decode cache (a new photo's variants share decodes) and without it (every variant decodes). ms per source, median of 5."
	echo
	echo "| source | warm ms | per variant ms | per variant, no decode cache ms | no decode cache / warm |"
	echo "| --- | --- | --- | --- | --- |"
	echo "| baseline | $wb_many | $wb_sep | $wb_off | $(awk -v a="$wb_off" -v b="$wb_many" 'BEGIN{printf "%.2f", a/b}') |"
	echo "| progressive | $wp_many | $wp_sep | $wp_off | $(awk -v a="$wp_off" -v b="$wp_many" 'BEGIN{printf "%.2f", a/b}') |"
	echo
	echo "\`BenchmarkLiveBesideWarm\`: one client's cold 400-599 px WebP renders of the baseline photo, alone and while a background warmer"
	echo "(\`IMAGE_PROXY_WARM_ON_CHANGE\`'s) re-renders its 8 variants without pause. Median latency, median of 3 runs: alone $live_alone ms, beside warm $live_warm ms."
	echo "## Tracing"
	echo
	echo "\`BenchmarkMemoryHitTracing\` (proxy): the memory hit through the Fiber handler, no sockets, $CONC cores, median of 5."
	echo "Off is the default (no OTLP endpoint: the no-op provider, which the code skips); on is the SDK with every request"
	echo "sampled and its spans (server, source.stat, cache.get) batched to an exporter that drops them."
	echo
	echo "| tracing | ns/op | B/op | allocs/op | × off |"
	echo "| --- | --- | --- | --- | --- |"
	echo "| off | $trace_off_ns | $(trace_stat off 5) | $(trace_stat off 7) | 1.00 |"
	echo "| on, sampled | $trace_on_ns | $(trace_stat on 5) | $(trace_stat on 7) | $(awk -v a="$trace_on_ns" -v b="$trace_off_ns" 'BEGIN{printf "%.2f", a/b}') |"
	echo
	cat "$tmp/distinct.md"
	echo
	cat "$tmp/longtail.md"
	echo
	cat "$tmp/lone.md"
	echo
	echo "## Publish burst"
	echo
	cat "$tmp/burst.md"
	echo
	echo "### One variant alone"
	echo
	echo "What the decode cache costs a variant that shares its decode with nothing: 400 px WebP through Render, one core, median of 5."
	echo "Off: the decode cache off, shrink-on-load 8, streamed. Miss: on, a new source each time: a baseline JPEG streams at its own shrink (8), as off;"
	echo "a progressive one decodes at a 1200 px box's shrink (4) into memory and is kept. Hit: resize and encode of a kept decode."
	echo
	echo "| source | off ms | miss ms | miss / off | hit ms |"
	echo "| --- | --- | --- | --- | --- |"
	for f in baseline progressive; do
		o=$(awk -v f=$f '$1==f && $2=="off"{print $3}' "$tmp/lone")
		m=$(awk -v f=$f '$1==f && $2=="miss"{print $3}' "$tmp/lone")
		h=$(awk -v f=$f '$1==f && $2=="hit"{print $3}' "$tmp/lone")
		echo "| $f | $o | $m | $(awk -v a="$m" -v b="$o" 'BEGIN{printf "%.2f", a/b}') | $h |"
	done
	echo
	echo "## Commands"
	echo
	echo '```'
	echo "make bench            # RUNS=$RUNS DURATION=$DURATION CONC=$CONC"
	echo "go test ./transform -run '^\$' -bench '^BenchmarkFloor\$' -benchtime 40x -cpu $CONC"
	echo "wrk -t2 -c$((CONC * 2)) -d$DURATION --latency 'http://127.0.0.1:PORT/baseline.jpg?size=400&format=webp'"
	echo "go test ./proxy -run '^\$' -bench '^BenchmarkMemoryHitTracing\$' -benchtime 2s -count 5 -cpu $CONC"
	echo "RUNS=$RUNS CONC=$CONC bash docs/bench/burst.sh   # publish burst"
	echo "IMGPROXY_BIN=/path/to/imgproxy RUNS=$RUNS CONC=$CONC bash docs/bench/cold-distinct.sh   # distinct sources against imgproxy"
	echo "IMGPROXY_BIN=/path/to/imgproxy RUNS=$RUNS CONC=$CONC bash docs/bench/longtail.sh   # the long tail against imgproxy"
	echo "IMGPROXY_BIN=/path/to/imgproxy RUNS=$RUNS CONC=$CONC SIZES=400 FORMATS=webp bash docs/bench/longtail.sh   # lone first renders, result cache on"
	echo "BENCH_SOURCE=FILE go test ./transform -run '^\$' -bench '^BenchmarkLoneVariant' -benchtime 10x -count 5 -cpu 1"
	echo '```'
	if [ -f docs/bench/notes.md ]; then
		echo
		cat docs/bench/notes.md
	fi
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
