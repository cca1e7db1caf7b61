"""Collect the JSON result lines of one bench run (stdin), add the side-by-side
ratios, and print them as JSON lines (--json) or as a table."""
import json
import sys

RATIOS = {
    # (suite, metric): (numerator system, denominator system, name, note)
    ("exact", "batch_1000_seconds"): ("faiss", "nusterdb", "batch_speedup_vs_faiss",
                                      "FAISS time / NusterDB time, target >= 1.0"),
}


def main():
    as_json = "--json" in sys.argv[1:]
    rows = [json.loads(line) for line in sys.stdin if line.strip().startswith("{")]
    by = {(r["suite"], r["system"], r["metric"]): r for r in rows}
    for (suite, metric), (num, den, name, note) in RATIOS.items():
        a, b = by.get((suite, num, metric)), by.get((suite, den, metric))
        if a and b and b["value"]:
            rows.append({"suite": suite, "system": "nusterdb", "dataset": b["dataset"], "metric": name,
                         "value": a["value"] / b["value"], "unit": "ratio", "note": note})
    ids = [r for r in rows if r["metric"] == "first_query_ids"]
    if len(ids) == 2:
        same = ids[0]["ids"] == ids[1]["ids"]
        rows.append({"suite": ids[0]["suite"], "system": "nusterdb", "dataset": ids[0]["dataset"],
                     "metric": "first_query_same_ids_as_faiss", "value": 1 if same else 0, "unit": "bool"})
    rows = [r for r in rows if r["metric"] != "first_query_ids"]
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    print("%-7s %-9s %-18s %-34s %14s %-10s %s" % ("suite", "system", "dataset", "metric", "value", "unit", "note"))
    for r in rows:
        print("%-7s %-9s %-18s %-34s %14.4g %-10s %s" % (r["suite"], r["system"], r["dataset"], r["metric"],
                                                        r["value"], r["unit"], r.get("note", "")))


if __name__ == "__main__":
    main()
