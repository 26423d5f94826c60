#!/usr/bin/env bash
# bench-ab.sh runs zkcoord-bench against several gateway binaries in
# alternating rounds (A B A B ...), so a machine's drift falls on every
# variant alike, and writes each variant's figures in benchstat's format:
# OUT/<name>.txt, one line per figure and run (the gateway's value, the
# direct and etcd counterparts, and the ratios), with the 1-minute load
# before each run. Compare them with benchstat:
#
#   scripts/bench-ab.sh -n 10 -o /tmp/ab old=/tmp/zkcoord-old new=bin/zkcoord \
#       -- -workloads campaign -failovers 600 -no-etcd
#   go run golang.org/x/perf/cmd/benchstat@latest /tmp/ab/old.txt /tmp/ab/new.txt
#
# Flags after -- go to every zkcoord-bench run (-zkcoord, -out and -q are
# set here). Needs jq.
set -euo pipefail

n=8
out=
bench="$(dirname "$0")/../bin/zkcoord-bench"
usage() { echo "usage: $0 [-n rounds] -o dir [-b zkcoord-bench] name=zkcoord-binary... -- bench flags" >&2; exit 2; }
while getopts "n:o:b:" f; do
	case $f in
	n) n=$OPTARG ;;
	o) out=$OPTARG ;;
	b) bench=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ -n $out ]] || usage
variants=()
while [[ $# -gt 0 && $1 != -- ]]; do
	[[ $1 == *=* ]] || usage
	variants+=("$1")
	shift
done
[[ ${#variants[@]} -ge 1 ]] || usage
[[ $# -gt 0 ]] && shift # the --
command -v jq >/dev/null || { echo "$0: needs jq (apt-get install jq)" >&2; exit 1; }
mkdir -p "$out"
for v in "${variants[@]}"; do : >"$out/${v%%=*}.txt"; done

# figures turns a bench.json into benchstat lines.
figures() {
	jq -r '.[] | (.workload + " " + .name | gsub("[^A-Za-z0-9]+"; "_") | "Benchmark" + .) as $n
		| (.unit | gsub(" "; "_")) as $u
		| ([$n + "/zkcoord 1 \(.gateway) " + $u]
		   + (if .direct != null then [$n + "/direct 1 \(.direct) " + $u] else [] end)
		   + (if .etcd != null then [$n + "/etcd 1 \(.etcd) " + $u] else [] end)
		   + (if .ratio != null then [$n + "/vs_direct 1 \(.ratio) x"] else [] end)
		   + (if .ratio_etcd != null then [$n + "/vs_etcd 1 \(.ratio_etcd) x"] else [] end))
		| .[]' "$1"
}

for ((i = 1; i <= n; i++)); do
	for v in "${variants[@]}"; do
		name=${v%%=*} bin=${v#*=}
		dir=$(mktemp -d)
		echo "# round $i, load $(cut -d' ' -f1 /proc/loadavg)" >>"$out/$name.txt"
		"$bench" -q -zkcoord "$bin" -out "$dir" "$@" >/dev/null
		figures "$dir/bench.json" >>"$out/$name.txt"
		rm -rf "$dir"
	done
done
