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
