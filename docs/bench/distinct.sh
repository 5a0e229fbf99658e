# Sourced by burst.sh and cold-distinct.sh: a temporary directory cleaned up
# on exit, the binaries built into it, and sets of distinct 5120×2880 JPEG
# sources. Needs SOURCES and a label in $set_label ("burst", "cold").

corpus=${CORPUS:-../shared/corpus}
tmp=$(mktemp -d)
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/image-proxy" .
go build -o "$tmp/burst" ./docs/bench/burst

# Distinct sources: each copy gets a JPEG comment (COM) segment of its own
# right after the SOI marker, so no two files (nor their identities) agree.
mkdir -p "$tmp/root"
make_set() { # KIND FILE
	local i c
	for i in $(seq -w 0 $((SOURCES - 1))); do
		c="$set_label $1-$i"
		{ head -c 2 "$2"; printf "\\xff\\xfe\\x00\\x$(printf %02x $((${#c} + 2)))%s" "$c"; tail -c +3 "$2"; } >"$tmp/root/$1-$i.jpg"
	done
}
if [ -f "$corpus/volna-baseline-5120x2880.jpg" ]; then
	make_set b "$corpus/volna-baseline-5120x2880.jpg"
	make_set p "$corpus/volna-5120x2880.jpg"
	source_note="$SOURCES copies each of ../shared/corpus/volna-baseline-5120x2880.jpg (b, baseline) and volna-5120x2880.jpg (p, progressive), each with a comment segment of its own"
else
	make_set b data/images/hubble_deep_field.jpg
	make_set p data/images/coffee-progressive.jpg
	source_note="data/images (the corpus was not available): hubble_deep_field.jpg, coffee-progressive.jpg"
fi

port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
hwm_mb() { awk '/^VmHWM/{printf "%.0f", $2/1024}' "/proc/$server_pid/status"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# wait_up URL: polls until the server answers, for at most 30 s.
wait_up() {
	local i
	for i in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
	echo "server did not come up: $1" >&2
	tail -20 "$tmp/server.log" >&2
	return 1
}
# start_ours ENV...: image-proxy over the set, as the benchmarks run it
# (and what each adds: the cache off, the disk tier, …).
start_ours() {
	env MALLOC_ARENA_MAX=2 IMAGE_PROXY_BIND_ADDRESS="127.0.0.1:$port" IMAGE_PROXY_ROOT_PATH="$tmp/root" \
		IMAGE_PROXY_LOG_LEVEL=warn IMAGE_PROXY_CONCURRENCY="$CONC" IMAGE_PROXY_QUEUE_DEPTH=1024 \
		IMAGE_PROXY_QUEUE_TIMEOUT=120s "$@" "$tmp/image-proxy" >>"$tmp/server.log" 2>&1 &
	server_pid=$!
	wait_up "$base/health"
}
# imgproxy with its defaults, reading the same directory; MALLOC_ARENA_MAX
# as ours, so the allocator is not what differs.
start_imgproxy() {
	env MALLOC_ARENA_MAX=2 IMGPROXY_BIND="127.0.0.1:$port" IMGPROXY_LOCAL_FILESYSTEM_ROOT="$tmp/root" \
		IMGPROXY_LOG_LEVEL=warn "$IMGPROXY_BIN" >>"$tmp/server.log" 2>&1 &
	server_pid=$!
	wait_up "$base/health"
}
# cpu_ticks: the server's user + system time so far, in clock ticks. CPU per
# image is steadier than req/s on a shared machine: what other processes
# take from the wall clock, they do not add to the server's CPU time.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
# measure KIND SERVER: one burst of the URLs in $tmp/urls but the first
# (the check), against the running server; appends "KIND SERVER img/s
# peak-RSS-MB CPU-ms-per-image" to $tmp/results. A failed request fails
# the run.
measure() {
	local c0 c1 res errors cpu_ms
	c0=$(cpu_ticks)
	res=$("$tmp/burst" -c "$CLIENTS" <(tail -n +2 "$tmp/urls"))
	c1=$(cpu_ticks)
	errors=$(echo "$res" | cut -d' ' -f4)
	if [ "$errors" != 0 ]; then
		echo "$2: $errors failed requests" >&2
		exit 1
	fi
	cpu_ms=$(awk -v d=$((c1 - c0)) -v n="$(echo "$res" | cut -d' ' -f1)" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", 1000*d/hz/n}')
	echo "$1 $2 $(echo "$res" | cut -d' ' -f3) $(hwm_mb) $cpu_ms" | tee -a "$tmp/results" >&2
}
# get KIND SERVER COLUMN: the median of that column over the runs.
get() { awk -v k="$1" -v s="$2" -v c="$3" '$1==k && $2==s {print $c}' "$tmp/results" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a != "" && b > 0) printf "%.2f×", a/b; else print "n/a" }'; }
