#!/usr/bin/env bash
# Cache hits against the ceiling (a bare Fiber handler returning the same
# bytes), for a ~3 KB and a ~30 KB body. Prints a Markdown section.
#
#   bash docs/bench/hits.sh            # standalone: builds, measures, splices the
#                                      # section into docs/benchmarks.md
#   hits.sh BINDIR ROOT                # from run.sh: binaries and sources prepared
#
# Five servers run side by side (image-proxy with the memory tier,
# image-proxy with values kept out of memory so every hit is a disk hit,
# and three ceilings), and every round measures each workload once, so the
# ratios compare runs seconds apart. Ratios are per round; the
# table shows medians over ROUNDS rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${HIT_DURATION:-3s} # per wrk run: short, the machine is shared
CONNS=${HIT_CONNS:-16}
corpus=../shared/corpus

standalone=false
if [ $# -eq 0 ]; then
	standalone=true
	tmp=$(mktemp -d)
	go build -o "$tmp/image-proxy" .
	go build -o "$tmp/ceiling" ./docs/bench/ceiling
	bindir=$tmp root=$tmp/root
	mkdir -p "$root"
	if [ -f "$corpus/volna-baseline-5120x2880.jpg" ]; then
		cp "$corpus/volna-baseline-5120x2880.jpg" "$root/baseline.jpg"
	else
		cp data/images/hubble_deep_field.jpg "$root/baseline.jpg"
	fi
else
	bindir=$1 root=$2
	tmp=$(mktemp -d)
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

port0=$((20000 + RANDOM % 20000))
mem=http://127.0.0.1:$port0 disk=http://127.0.0.1:$((port0 + 1))
ceil=http://127.0.0.1:$((port0 + 2)) bare=http://127.0.0.1:$((port0 + 3)) same=http://127.0.0.1:$((port0 + 4))
serve() { # PORT env...
	local port=$1
	shift
	env MALLOC_ARENA_MAX=2 IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$port" IMAGE_PROXY_ROOT_PATH="$root" \
		IMAGE_PROXY_LOG_LEVEL=warn IMAGE_PROXY_CONCURRENCY=2 "$@" "$bindir/image-proxy" >>"$tmp/server.log" 2>&1 &
	pids+=($!)
	until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.1; done
}
serve "$port0" IMAGE_PROXY_ENABLE_CACHE=true
mem_pid=$!
serve $((port0 + 1)) IMAGE_PROXY_ENABLE_CACHE=true IMAGE_PROXY_ENABLE_DISK_CACHE=true \
	IMAGE_PROXY_CACHE_MAX_ITEM_SIZE=1024 IMAGE_PROXY_CACHE_DISK_PATH="$tmp/cache"
disk_pid=$!

small="baseline.jpg?size=400&format=webp"   # ~3 KB
large="baseline.jpg?size=1200&format=jpeg"  # ~30 KB
status() { curl -fs -D - -o /dev/null "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}'; }
for q in "$small" "$large"; do
	curl -fs -o /dev/null "$mem/$q"
	curl -fs -o /dev/null "$disk/$q"
	[ "$(status "$mem/$q")" = HIT-MEMORY ] || { echo "$q: not a memory hit" >&2; exit 1; }
	[ "$(status "$disk/$q")" = HIT-DISK ] || { echo "$q: not a disk hit" >&2; exit 1; }
done
curl -fs -o "$tmp/small" "$mem/$small"
curl -fs -o "$tmp/large" "$mem/$large"
# image-proxy's header lines for the small hit, for the same-response ceiling
curl -fs -D - -o /dev/null "$mem/$small" | tr -d '\r' |
	grep -iv '^HTTP/\|^date:\|^content-type:\|^content-length:\|^server:\|^$' >"$tmp/headers"
"$bindir/ceiling" "127.0.0.1:$((port0 + 2))" "$tmp/small" image/webp "$tmp/large" image/jpeg >>"$tmp/server.log" 2>&1 &
ceil_pid=$!
pids+=($!)
"$bindir/ceiling" -bare "127.0.0.1:$((port0 + 3))" "$tmp/small" image/webp "$tmp/large" image/jpeg >>"$tmp/server.log" 2>&1 &
bare_pid=$!
pids+=($!)
"$bindir/ceiling" -headers "$tmp/headers" "127.0.0.1:$((port0 + 4))" "$tmp/small" image/webp "$tmp/large" image/jpeg >>"$tmp/server.log" 2>&1 &
same_pid=$!
pids+=($!)
until curl -fs "$ceil/0" >/dev/null 2>&1 && curl -fs "$bare/0" >/dev/null 2>&1 && curl -fs "$same/0" >/dev/null 2>&1; do sleep 0.1; done

workloads=(
	"ceiling-3k $ceil/0 $ceil_pid"
	"bare-ceiling-3k $bare/0 $bare_pid"
	"same-response-ceiling-3k $same/0 $same_pid"
	"memory-hit-3k $mem/$small $mem_pid"
	"disk-hit-3k $disk/$small $disk_pid"
	"ceiling-30k $ceil/1 $ceil_pid"
	"bare-ceiling-30k $bare/1 $bare_pid"
	"same-response-ceiling-30k $same/1 $same_pid"
	"memory-hit-30k $mem/$large $mem_pid"
	"disk-hit-30k $disk/$large $disk_pid"
)
# measure URL PID: "req/s server-CPU-µs-per-request". The server's CPU time
# (user + system, from /proc) is steadier than throughput on a shared
# machine: it does not depend on how much CPU the others leave us.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() {
	local out t0 t1 n
	t0=$(cpu_ticks "$2")
	out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "$1")
	t1=$(cpu_ticks "$2")
	n=$(echo "$out" | awk '/requests in/{print $1}')
	[ -n "$n" ] && [ "$n" -gt 0 ] || { echo "wrk gave no result for $1" >&2; exit 1; }
	echo "$(echo "$out" | awk '/^Requests\/sec/{print $2}') $(awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz*1e6/n}')"
}
command -v wrk >/dev/null || { echo "wrk is missing: make bench-deps" >&2; exit 1; }
: >"$tmp/rounds"
for r in $(seq "$ROUNDS"); do
	for w in "${workloads[@]}"; do
		set -- $w
		echo "$r $1 $(measure "$2" "$3")" >>"$tmp/rounds"
	done
	echo "round $r done" >&2
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v n="$1" -v c="${2:-3}" '$2==n{print $c}' "$tmp/rounds"; }
ratios() { # HIT CEILING: per-round ratios in %
	join <(awk -v n="$1" '$2==n{print $1, $3}' "$tmp/rounds" | sort) \
		<(awk -v n="$2" '$2==n{print $1, $3}' "$tmp/rounds" | sort) | awk '{printf "%.1f\n", 100*$2/$3}'
}
section() {
	echo "## Hits against the ceiling"
	echo
	echo "The ceiling is docs/bench/ceiling: a bare Fiber handler returning the same bytes from memory,"
	echo "with image-proxy's default server settings (read, write and idle timeouts, buffer and"
	echo "connection limits). Two more yardsticks: the bare ceiling has Fiber's defaults (no timeouts,"
	echo "so no deadline update per request); the same-response ceiling also sends image-proxy's header"
	echo "lines (Cache-Control, ETag, Last-Modified, Vary, Accept-CH, X-Cache-Status,"
	echo "X-Content-Type-Options), so it differs from a hit only in the handler's work. Five servers side"
	echo "by side; every round measures each workload once for $DURATION (\`wrk -t2 -c$CONNS\`, wrk on the"
	echo "same 2 cores); ratios are per round, the table shows medians of $ROUNDS rounds and the range."
	echo "Bodies: \`$small\` ($(wc -c <"$tmp/small") bytes), \`$large\` ($(wc -c <"$tmp/large") bytes)."
	echo "Disk hits: \`IMAGE_PROXY_CACHE_MAX_ITEM_SIZE=1024\` keeps the values out of the memory tier."
	echo
	echo "| workload | req/s | / ceiling | range | / bare ceiling | / same-response ceiling | server CPU µs/req |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	for size in 3k 30k; do
		for c in ceiling bare-ceiling same-response-ceiling; do
			echo "| $c-$size | $(col $c-$size | median) |  |  |  |  | $(col $c-$size 4 | median) |"
		done
		for w in memory-hit-$size disk-hit-$size; do
			echo "| $w | $(col $w | median) | **$(ratios $w ceiling-$size | median) %** | $(ratios $w ceiling-$size | sort -g | head -1)–$(ratios $w ceiling-$size | sort -g | tail -1) % | $(ratios $w bare-ceiling-$size | median) % | $(ratios $w same-response-ceiling-$size | median) % | $(col $w 4 | median) |"
		done
	done
	echo
	echo "Server CPU µs/req is the server process's user + system time over the requests wrk completed:"
	echo "steadier than req/s on a shared machine. wrk itself uses about as much again per request, which"
	echo "is why a hit's extra server time weighs less in req/s than in this column."
	echo
	echo "Command: \`bash docs/bench/hits.sh\` (ROUNDS=$ROUNDS HIT_DURATION=$DURATION), or \`make bench\`."
}

if $standalone; then
	section >"$tmp/section.md"
	cat "$tmp/section.md"
	# Replace the section in docs/benchmarks.md, up to the next "## " heading.
	awk -v f="$tmp/section.md" '
		/^## Hits against the ceiling$/ { while ((getline l < f) > 0) print l; print ""; skip = 1; next }
		skip && /^## / { skip = 0 }
		!skip' docs/benchmarks.md >"$tmp/benchmarks.md"
	grep -q '^## Hits against the ceiling$' docs/benchmarks.md || { echo "docs/benchmarks.md has no hits section: run make bench" >&2; exit 1; }
	cp "$tmp/benchmarks.md" docs/benchmarks.md
	echo "updated docs/benchmarks.md" >&2
else
	section
fi
