#!/bin/sh
# The NusterDB demo (README's first command runs it through ./setup.sh demo):
# Fashion-MNIST, 60,000 images of 784 pixels, into a .nvf file with nvf-tool, then
# exact searches with the 10,000 test images, an HNSW graph built into the same file
# and searched, its recall against the exact results, a reopen, a check, and what it
# all cost.
# Usage: tools/demo.sh BUILD_DIR
set -eu
build=${1:-build}
tool="$build/tools/nvf-tool"
data=/usr/share/datasets/fashion-mnist
work="$build/demo"
db="$work/fashion.nvf"

if [ ! -x "$tool" ]; then
	echo "demo: $tool is missing; run ./setup.sh demo" >&2
	exit 1
fi
for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
	if [ ! -f "$data/$f" ]; then
		echo "demo: $data/$f is missing (Debian package dataset-fashion-mnist); run ./setup.sh demo" >&2
		exit 1
	fi
done
mkdir -p "$work"
rm -f "$db" "$db-lock"

step() { printf '\n== %s\n' "$*"; }

step "create a collection: 784 dimensions, euclidean, exact (flat) index"
echo "\$ nvf-tool create $db --dim 784 --metric euclidean --index flat"
"$tool" create "$db" --dim 784 --metric euclidean --index flat

step "import the 60,000 training images (IDX, gzip) in one transaction"
"$tool" import "$db" "$data/train-images-idx3-ubyte.gz"

step "the 10 nearest images of the first 3 test images"
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 10 --limit 3

step "all 10,000 test images as one batch (both cores), timed"
start=$(date +%s.%N)
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 10 --json > "$work/results.jsonl"
end=$(date +%s.%N)
lines=$(wc -l < "$work/results.jsonl")
awk -v s="$start" -v e="$end" -v n="$lines" \
	'BEGIN { printf "%d queries in %.2f s: %.0f queries/s; results in %s\n", n, e - s, n / (e - s), "'"$work/results.jsonl"'" }'
head -c 300 "$work/results.jsonl"
echo " ..."

step "build an HNSW graph in the file (M 16, ef_construction 200, both cores), one transaction"
"$tool" reindex "$db" --index hnsw --M 16 --ef-construction 200

step "the same 10,000 queries on the graph, one thread, ef 64 (the default)"
start=$(date +%s.%N)
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 10 --threads 1 --json > "$work/hnsw.jsonl"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$(wc -l < "$work/hnsw.jsonl")" \
	'BEGIN { printf "%d queries in %.2f s on one core: %.0f queries/s (process start and reading the queries included)\n", n, e - s, n / (e - s) }'
# Recall@10 against the exact results above, tie-aware: a returned neighbour counts
# if it is no farther than the exact 10th.
/usr/bin/python3 - "$work/results.jsonl" "$work/hnsw.jsonl" <<'PY'
import json, sys
exact = [json.loads(l) for l in open(sys.argv[1])]
graph = [json.loads(l) for l in open(sys.argv[2])]
assert len(exact) == len(graph)
hits = sum(sum(1 for d in g["distances"] if d <= e["distances"][-1] * (1 + 1e-6)) for e, g in zip(exact, graph))
print(f"recall@10 against the exact search: {hits / (10 * len(exact)):.4f}")
PY

step "reopen: what the file holds"
"$tool" info "$db"

step "verify every checksum and invariant"
"$tool" check "$db"
