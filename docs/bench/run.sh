#!/usr/bin/env bash
# make bench: Go benchmarks (the libvips floor) and wrk load against the real
# binary on loopback, with the ceiling (a bare Fiber handler) in the same run.
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

echo "== hits"
start_server IMAGE_PROXY_ENABLE_CACHE=true IMAGE_PROXY_ENABLE_DISK_CACHE=true IMAGE_PROXY_CACHE_MAX_ITEM_SIZE=1024
hit_url="$base/baseline.jpg?size=400&format=webp"
curl -fs -o "$tmp/hit.webp" "$hit_url"
[ "$(curl -fs -D - -o /dev/null "$hit_url" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')" = HIT-DISK ]
wrk_runs disk-hit 16 "$hit_url"
stop_server
start_server IMAGE_PROXY_ENABLE_CACHE=true
curl -fs -o /dev/null "$hit_url"
wrk_runs memory-hit 16 "$hit_url"
echo "== passthrough"
wrk_runs passthrough-large 16 "$base/progressive.jpg"
wrk_runs passthrough-small 16 "$base/small.jpg"
stop_server

echo "== ceiling (bare Fiber, same bytes)"
"$tmp/ceiling" "127.0.0.1:$port" "$tmp/hit.webp" image/webp >>"$tmp/server.log" 2>&1 &
server_pid=$!
until curl -fs "$base/x" >/dev/null 2>&1; do sleep 0.1; done
wrk_runs ceiling 16 "$base/x"
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
	echo "## Hits and passthrough against the ceiling"
	echo
	echo "The ceiling is docs/bench/ceiling: a bare Fiber handler returning the same bytes from memory."
	echo
	echo "| workload | req/s | p50 ms | p99 ms | MB/s | / ceiling |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for w in memory-hit disk-hit ceiling passthrough-large passthrough-small; do
		c=""
		case $w in memory-hit | disk-hit) c=$(ratio "$(get $w 2)" "$(get ceiling 2)") ;; esac
		echo "| $w | $(get $w 2) | $(get $w 3) | $(get $w 4) | $(get $w 5) | $c |"
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
	cat "$tmp/burst.md"
	echo
	echo "### One variant alone"
	echo
	echo "What the decode cache costs a variant that shares its decode with nothing: 400 px WebP through Render, one core, median of 5."
	echo "Off: shrink-on-load 8, streamed. Miss: the shrink of a 1200 px box (4), decoded into memory and kept. Hit: resize and encode of a kept decode."
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
	echo "RUNS=$RUNS CONC=$CONC bash docs/bench/burst.sh   # publish burst"
	echo "BENCH_SOURCE=FILE go test ./transform -run '^\$' -bench '^BenchmarkLoneVariant' -benchtime 10x -count 5 -cpu 1"
	echo '```'
	if [ -f docs/bench/notes.md ]; then
		echo
		cat docs/bench/notes.md
	fi
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md"
