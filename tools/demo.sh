#!/bin/sh
# The NusterDB demo (README's first command runs it through ./setup.sh demo):
# Fashion-MNIST, 60,000 images of 784 pixels with their class labels as documents,
# into a .nvf file with nvf-tool, then exact searches with the 10,000 test images, an
# HNSW graph built into the same file and searched, its recall against the exact
# results, a field index and filtered searches (the planner explains its choice),
# tags, a named snapshot searched after a delete, its diff and restore, compact,
# backup, statistics, a reopen, the same file from Python, a check, and what it all
# cost.
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
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz; do
	if [ ! -f "$data/$f" ]; then
		echo "demo: $data/$f is missing (Debian package dataset-fashion-mnist); run ./setup.sh demo" >&2
		exit 1
	fi
done
mkdir -p "$work"
rm -f "$db" "$db-lock"

step() { printf '\n== %s\n' "$*"; }

step "create a collection: 784 dimensions, euclidean, exact (flat) index, documents in zstd with a trained dictionary"
echo "\$ nvf-tool create $db --dim 784 --metric euclidean --index flat --codec zstd-dict"
"$tool" create "$db" --dim 784 --metric euclidean --index flat --codec zstd-dict

step "one document a training image: its class label (IDX labels file) as JSON lines"
/usr/bin/python3 - "$data/train-labels-idx1-ubyte.gz" "$work/labels.jsonl" <<'PY'
import gzip, json, sys
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
raw = gzip.open(sys.argv[1]).read()
assert raw[:4] == b"\x00\x00\x08\x01", "not an IDX uint8 vector"
labels = raw[8:]
with open(sys.argv[2], "w") as f:
    for i, l in enumerate(labels):
        f.write(json.dumps({"label": l, "class": names[l], "split": "train", "index": i}) + "\n")
print(f"{len(labels)} documents in {sys.argv[2]}, e.g.", json.dumps({"label": labels[0], "class": names[labels[0]], "split": "train", "index": 0}))
PY

step "import the 60,000 training images (IDX, gzip) and their documents in one transaction"
"$tool" import "$db" "$data/train-images-idx3-ubyte.gz" --meta "$work/labels.jsonl"
echo "\$ nvf-tool meta get $db 0 --record"
"$tool" meta get "$db" 0 --record

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

step "tags and a document patch: each is one transaction, the vector and the graph untouched"
"$tool" tag add "$db" 0 favourite reviewed
"$tool" tag add "$db" 1 favourite
"$tool" meta patch "$db" 0 '{"note": "first image", "split": null}'
"$tool" meta get "$db" 0 --record

step "a filtered search without a field index: the planner reads the documents"
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 5 --limit 2 \
	--filter "class = 'Sneaker'" --explain

step "a field index on class, then filters from common to rare, on all 10,000 queries"
"$tool" field add "$db" class --type string
"$tool" field add "$db" index --type int
"$tool" field add "$db" tags --type tags
for flt in "class = 'Sneaker'" "class IN ('Bag', 'Sandal') AND index < 6000" "class = 'Coat' AND index BETWEEN 1000 AND 1600" "tags CONTAINS 'favourite'"; do
	echo "\$ nvf-tool search $db --query-file t10k-images -k 10 --filter \"$flt\" --explain"
	start=$(date +%s.%N)
	"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 10 --json --explain \
		--filter "$flt" > "$work/filtered.jsonl"
	end=$(date +%s.%N)
	# Every result must pass the filter: checked against the labels file.
	/usr/bin/python3 - "$work/filtered.jsonl" "$work/labels.jsonl" "$flt" "$start" "$end" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[2])]
rows = [json.loads(l) for l in open(sys.argv[1])]
explain = rows.pop()["explain"]
flt = sys.argv[3]
def passes(i):
    d = docs[i]
    if flt.startswith("tags"):
        return i in (0, 1)
    if flt.startswith("class = 'Sneaker'"):
        return d["class"] == "Sneaker"
    if flt.startswith("class IN"):
        return d["class"] in ("Bag", "Sandal") and i < 6000
    return d["class"] == "Coat" and 1000 <= i <= 1600
bad = sum(1 for r in rows for i in r["ids"] if not passes(i))
n = sum(len(r["ids"]) for r in rows)
print(f"  plan {explain['plan']}, {explain['estimate']} of {explain['records']} records pass ({explain['estimate_from']}); "
      f"{len(rows)} queries in {float(sys.argv[5]) - float(sys.argv[4]):.2f} s (both cores), {n} results, {bad} failing the filter")
assert bad == 0
PY
done

step "a named snapshot (no copy), then the 6,000 bags deleted in one transaction"
"$tool" snapshot create "$db" before-cleanup --doc '{"why": "before deleting the bags"}'
"$tool" export "$db" "$work/bags.jsonl" --filter "class = 'Bag'" --quiet
ids=$(/usr/bin/python3 -c 'import json, sys; print(" ".join(str(json.loads(l)["id"]) for l in open(sys.argv[1])))' "$work/bags.jsonl")
# shellcheck disable=SC2086
"$tool" delete "$db" $ids
rm -f "$work/bags.jsonl"
echo "\$ nvf-tool search $db -q t10k-images -k 3 --limit 1 --filter \"class = 'Bag'\"   (now: none left)"
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 3 --limit 1 --filter "class = 'Bag'"
echo "\$ ... --snapshot before-cleanup   (the snapshot still has them)"
"$tool" search "$db" --query-file "$data/t10k-images-idx3-ubyte.gz" -k 3 --limit 1 --filter "class = 'Bag'" \
	--snapshot before-cleanup
"$tool" snapshot list "$db"
echo "\$ nvf-tool snapshot diff $db before-cleanup | tail -1"
"$tool" snapshot diff "$db" before-cleanup | tail -1

step "restore the snapshot (one commit), then compact the file and back it up"
"$tool" snapshot restore "$db" before-cleanup
"$tool" snapshot delete "$db" before-cleanup
"$tool" compact "$db"
rm -f "$work/fashion-backup.nvf"
"$tool" backup "$db" "$work/fashion-backup.nvf"
"$tool" stats "$db" --sample 200

step "reopen: what the file holds"
"$tool" info "$db"

step "the same file from Python (import nusterdb; /usr/bin/python3, the build's module)"
PYTHONPATH="$build/python" /usr/bin/python3 - "$db" "$data/t10k-images-idx3-ubyte.gz" <<'PY'
import gzip, sys
import numpy as np
import nusterdb
raw = gzip.open(sys.argv[2]).read()
queries = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)[:1000]
with nusterdb.NusterDB.open(sys.argv[1], read_only=True) as db:
    print("  >>> db =", repr(db))
    ids, dists = db.knn(queries, k=10)   # uint8 rows, converted once to float32; all cores
    print(f"  >>> ids, dists = db.knn(queries, k=10)   # {ids.shape} {ids.dtype}, {dists.dtype}; first row {ids[0][:5].tolist()}...")
    hits = db.search(queries[0].astype(np.float32), k=3, filter="class = 'Sneaker'")
    print(f"  >>> db.search(q, k=3, filter=\"class = 'Sneaker'\") -> {[(i, round(d, 1)) for i, d in hits]}")
    print(f"  >>> db.get_metadata({hits[0][0]}).to_dict() -> {db.get_metadata(hits[0][0]).to_dict()}")
    st = db.stats()
    print(f"  >>> db.stats(): {st.vector_count} vectors of {st.dimension}, {st.index_type}, {st.file_size} bytes")
PY

step "verify every checksum and invariant"
"$tool" check "$db"

step "nusterfs: the same file mounted as a directory, one query with echo and cat"
fs="$build/nusterfs/nusterfs"
if [ ! -x "$fs" ]; then
	echo "nusterfs was not built (libfuse3 missing): skipping this part"
elif [ ! -w /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "no usable /dev/fuse or fusermount3 here (a container without FUSE?): skipping this part"
else
	mnt=$(mktemp -d "${TMPDIR:-/tmp}/nusterfs-demo.XXXXXX")
	# Unmounted whatever happens next.
	trap 'fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null; rmdir "$mnt" 2>/dev/null' EXIT INT TERM
	echo "\$ nusterfs $db $mnt -o ro"
	"$fs" "$db" "$mnt" -o ro
	echo "\$ ls $mnt; cat $mnt/info"
	ls "$mnt"
	cat "$mnt/info"
	echo "\$ ls $mnt/vectors | wc -l; cat $mnt/meta/42.json"
	ls "$mnt/vectors" | wc -l
	cat "$mnt/meta/42.json"
	# The query: record 42's own vector (784 floats of a raw float32 file) as JSON.
	vec=$(/usr/bin/python3 -c 'import struct, sys; d = open(sys.argv[1], "rb").read(); print("[" + ", ".join("%g" % x for x in struct.unpack("<%df" % (len(d) // 4), d)) + "]")' "$mnt/vectors/42")
	echo "\$ echo '{\"vector\": [$(echo "$vec" | cut -c2-40)...], \"k\": 5}' > $mnt/queries/q.json"
	echo "{\"vector\": $vec, \"k\": 5}" > "$mnt/queries/q.json"
	echo "\$ cat $mnt/queries/q.result.json"
	cat "$mnt/queries/q.result.json"
	echo "\$ cat $mnt/knn/3/42.json"
	cat "$mnt/knn/3/42.json"
	echo "\$ fusermount3 -u $mnt"
	fusermount3 -u "$mnt"
	rmdir "$mnt"
	trap - EXIT INT TERM
fi
