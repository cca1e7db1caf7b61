"""Collect the JSON result lines of one bench run (stdin), add the side-by-side
ratios, and print them as JSON lines (--json) or as a table.

bench hnsw: per data set, the rows qps_efEF and recall_efEF of each system make its
recall/QPS curve; the report adds each system's QPS interpolated at fixed recall
levels, the ratios of NusterDB's to each peer's and to the best peer's there, NusterDB's
recall at its default ef (goal >= 0.95), and the build-time, open + first query and
file-size ratios; --plot PATH draws the curves (matplotlib, Agg) in the style of
ann-benchmarks, --plot DATASET=PATH those of one data set (repeatable). A value that
cannot be computed (a system that never reaches a recall level) is null in JSON and
n/a in the table, and its note says why.

bench meta: the table is systems x metrics (file_bytes, bytes_per_doc, get_per_s,
scan_docs_per_s, scan_matches); the report adds nusterdb-zstd-dict's ratios to the
one-stream zstd -3 limit and to SQLite, each with its goal (null with a note when an
input is missing), and checks every system's scan_matches against the reference count
(system json-text).

bench filter: the rows qps_NAME_efEF and recall_NAME_efEF make each system's curve per
filter NAME (s1, s0.5, .. by selectivity); the report adds each system's QPS at recall
0.95 per filter (interpolated as for hnsw), and the ratio of NusterDB's to the best
peer's there (null, with a note, when NusterDB or every peer never reaches 0.95)."""
import json
import re
import sys

RATIOS = {
    # (suite, metric): (numerator system, denominator system, name, note)
    ("exact", "batch_1000_seconds"): ("faiss", "nusterdb", "batch_speedup_vs_faiss",
                                      "FAISS time / NusterDB time, target >= 1.0"),
}

HNSW_SYSTEMS = ["nusterdb", "hnswlib", "usearch", "faiss"]
HNSW_BEST_LEVELS = [0.95, 0.99]  # the goals' levels: NusterDB's QPS / the best peer's
HNSW_LEVELS = [0.95, 0.96, 0.97, 0.98, 0.99]
HNSW_EXTRA_LEVEL = 0.995  # reported if some system reaches it
HNSW_ORDER = ["other_processes_cpu_share", "default_ef", "walk_float", "recall_at_default_ef", "build_seconds", "build_seconds_10k", "save_seconds", "built_index_recall_ef10", "recall_ef",
              "qps_ef", "open_first_query_ms_10k", "open_first_query_ms", "file_bytes", "file_bytes_10k",
              "graph_bytes", "raw_vector_bytes", "qps_at_recall", "qps_ratio", "build_time_ratio",
              "open_first_query_ratio", "file_size_ratio"]
CURVE_POS = (HNSW_ORDER.index("recall_ef"), HNSW_ORDER.index("qps_ef"))  # sorted together, by ef


def curves(rows):
    """{system: [(ef, recall, qps)] sorted by ef} from the hnsw rows (of one data set)."""
    pts = {}
    for r in rows:
        m = re.fullmatch(r"(qps|recall)_ef(\d+)", r["metric"])
        if r["suite"] == "hnsw" and m:
            pts.setdefault(r["system"], {}).setdefault(int(m.group(2)), {})[m.group(1)] = r["value"]
    return {s: sorted((ef, v["recall"], v["qps"]) for ef, v in d.items() if "recall" in v and "qps" in v)
            for s, d in pts.items()}


def qps_at(curve, level):
    """(QPS at recall level by linear interpolation between neighbouring ef points,
    explanation); QPS None if the curve never reaches the level."""
    for i, (ef, rec, qps) in enumerate(curve):
        if rec >= level:
            if i == 0:
                return qps, "already reached at the smallest ef, %d (recall %.4f): its QPS" % (ef, rec)
            ef0, rec0, qps0 = curve[i - 1]
            q = qps0 + (level - rec0) * (qps - qps0) / (rec - rec0)
            return q, "interpolated between ef %d (recall %.4f) and ef %d (recall %.4f)" % (ef0, rec0, ef, rec)
    if not curve:
        return None, "no curve"
    best = max(curve, key=lambda p: p[1])
    return None, "never reached: best recall %.4f (ef %d)" % (best[1], best[0])


def hnsw_datasets(rows):
    """The data sets of the hnsw rows, in the order they first appear."""
    return list(dict.fromkeys(r["dataset"] for r in rows if r["suite"] == "hnsw"))


def hnsw_rows(rows):
    """The derived rows of bench hnsw, per data set."""
    return [d for ds in hnsw_datasets(rows) for d in hnsw_rows_of(ds, [r for r in rows if r["dataset"] == ds])]


def hnsw_rows_of(ds, rows):
    """The derived rows of bench hnsw on data set ds (rows: its rows)."""
    out = []
    by = {(r["system"], r["metric"]): r["value"] for r in rows if r["suite"] == "hnsw"}

    def add(system, metric, value, unit, note):
        out.append({"suite": "hnsw", "system": system, "dataset": ds, "metric": metric, "value": value,
                    "unit": unit, "note": note})

    cv = curves(rows)
    levels = list(HNSW_LEVELS)
    if any(max((p[1] for p in c), default=0) >= HNSW_EXTRA_LEVEL for c in cv.values()):
        levels.append(HNSW_EXTRA_LEVEL)
    systems = [s for s in HNSW_SYSTEMS if s in cv]
    for level in levels:
        at = {}
        for s in systems:
            at[s] = qps_at(cv[s], level)
            add(s, "qps_at_recall_%g" % level, at[s][0], "queries/s",
                "single thread, recall@10 %g: %s" % (level, at[s][1]))
        if "nusterdb" not in at:
            continue
        peers = [s for s in systems if s != "nusterdb"]
        if level in HNSW_BEST_LEVELS and peers:
            mine = at["nusterdb"][0]
            reached = {p: at[p][0] for p in peers if at[p][0]}
            never = [p for p in peers if not at[p][0]]
            if mine is None:
                value, note = None, "not reached: NusterDB never reaches recall@10 %g (%s)" % (level, at["nusterdb"][1])
            elif not reached:
                value, note = None, "not reached: no peer reaches recall@10 %g (%s)" % (level, ", ".join(never))
            else:
                best = max(reached, key=reached.get)
                value = mine / reached[best]
                note = "NusterDB QPS / %s QPS (the fastest peer there, %.0f/s), both interpolated at recall@10 %g" % (
                    best, reached[best], level)
                if never:
                    note += "; %s never reach it" % ", ".join(never)
            add("nusterdb", "qps_ratio_vs_best_peer_at_recall_%g" % level, value, "ratio", note)
        for peer in peers:
            a, b = at["nusterdb"][0], at[peer][0]
            if a is not None and b:
                add("nusterdb", "qps_ratio_vs_%s_at_recall_%g" % (peer, level), a / b, "ratio",
                    "NusterDB QPS / %s QPS, both interpolated at recall@10 %g" % (peer, level))
            else:
                who = [n for n, v in (("NusterDB", a), (peer, b)) if not v]
                add("nusterdb", "qps_ratio_vs_%s_at_recall_%g" % (peer, level), None, "ratio",
                    "n/a: %s never reaches recall@10 %g" % (" and ".join(who), level))

    def ratio(metric, num, den, note):
        if num is not None and den:
            add("nusterdb", metric, num / den, "ratio", note)

    dflt = by.get(("nusterdb", "default_ef"))
    if dflt is not None:
        r = by.get(("nusterdb", "recall_ef%d" % dflt))
        walk = by.get(("nusterdb", "walk_float"))
        how = "" if walk is None else ", walking on %s (quantize auto's choice)" % ("float32" if walk else "4-bit codes")
        if r is None:
            add("nusterdb", "recall_at_default_ef", None, "recall",
                "n/a: ef %d (the default) is not in the bench's ef list" % dflt)
        else:
            add("nusterdb", "recall_at_default_ef", r, "recall", "recall@10 at the default ef %d%s, goal >= 0.95: %s"
                % (dflt, how, "met" if r >= 0.95 else "NOT met"))

    save = by.get(("hnswlib", "save_seconds"))
    gq = [by.get((s, "built_index_recall_ef10")) for s in ("nusterdb", "hnswlib")]
    ratio("build_time_ratio_vs_hnswlib", by.get(("nusterdb", "build_seconds")), by.get(("hnswlib", "build_seconds")),
          "NusterDB build / hnswlib build, 2 threads each, goal <= 0.7 at equal or better recall (the built "
          "graphs at ef 10 on float32: NusterDB %s, hnswlib %s); NusterDB's includes writing the file "
          "durably, hnswlib's is in memory (its saveIndex took %s s more)"
          % tuple(["%.4f" % v if v is not None else "?" for v in gq] + ["%.2f" % save if save else "?"]))
    for suffix, size in (("", "all the"), ("_10k", "10,000")):
        ratio("open_first_query_ratio_vs_hnswlib" + suffix, by.get(("nusterdb", "open_first_query_ms" + suffix)),
              by.get(("hnswlib", "open_first_query_ms" + suffix)),
              "NusterDB open + first query / hnswlib loadIndex + first query, %s vectors, goal <= 0.02" % size)
    nvf, raw = by.get(("nusterdb", "file_bytes")), by.get(("nusterdb", "raw_vector_bytes"))
    graph, hfile = by.get(("hnswlib", "graph_bytes")), by.get(("hnswlib", "file_bytes"))
    if raw is not None and graph is not None:
        ratio("file_size_ratio_vs_vectors_plus_hnswlib_graph", nvf, raw + graph,
              ".nvf file / (raw float32 vectors %d + hnswlib's graph part %d bytes), goal <= 1.15"
              % (raw, graph))
    ratio("file_size_ratio_vs_hnswlib_file", nvf, hfile,
          ".nvf file / hnswlib's whole saveIndex file (vectors, labels, graph)")
    return out


META_SYSTEMS = ["nusterdb-none", "nusterdb-lz4", "nusterdb-snappy", "nusterdb-zstd", "nusterdb-zstd-dict",
                "sqlite", "zstd-3-stream", "json-text"]
META_METRICS = ["file_bytes", "bytes_per_doc", "get_per_s", "scan_docs_per_s", "scan_matches"]
META_RATIOS = [
    # (name, metric, denominator system, goal operator, goal, what)
    ("size_ratio_vs_zstd_stream", "bytes_per_doc", "zstd-3-stream", "<=", 1.3,
     "bytes per document / zstd -3 over the whole corpus as one stream, per document"),
    ("file_ratio_vs_sqlite", "file_bytes", "sqlite", "<=", 0.5, "file bytes / SQLite's file bytes"),
    ("get_ratio_vs_sqlite", "get_per_s", "sqlite", ">", 1.0, "random gets/s / SQLite's gets/s"),
    ("scan_ratio_vs_sqlite", "scan_docs_per_s", "sqlite", ">", 1.0,
     "documents scanned/s with the filter / SQLite's (json_extract)"),
]
META_NUSTERDB = "nusterdb-zstd-dict"


def meta_rows(rows):
    """The derived rows of bench meta: nusterdb-zstd-dict's ratios, and the scan checks."""
    out = []
    by = {(r["system"], r["metric"]): r["value"] for r in rows if r["suite"] == "meta"}
    ds = next((r["dataset"] for r in rows if r["suite"] == "meta"), "debian-packages")
    for name, metric, den, op, goal, what in META_RATIOS:
        a, b = by.get((META_NUSTERDB, metric)), by.get((den, metric))
        row = {"suite": "meta", "system": META_NUSTERDB, "dataset": ds, "metric": name, "value": None,
               "unit": "ratio", "goal": "%s %g" % (op, goal), "met": None}
        if a is not None and b:
            row["value"] = a / b
            row["met"] = a / b <= goal if op == "<=" else a / b > goal
            row["note"] = "%s %s, goal %s %g: %s" % (META_NUSTERDB, what, op, goal, "met" if row["met"] else "NOT met")
        else:
            missing = [("%s %s" % (s, metric)) for s, v in ((META_NUSTERDB, a), (den, b)) if not v]
            row["note"] = "n/a: no %s (%s %s, goal %s %g)" % (" and no ".join(missing), META_NUSTERDB, what, op, goal)
        out.append(row)
    ref = by.get(("json-text", "scan_matches"))
    for s in [s for s in META_SYSTEMS if s != "json-text"] + sorted({r["system"] for r in rows} - set(META_SYSTEMS)):
        v = by.get((s, "scan_matches"))
        if v is None or ref is None:
            continue
        out.append({"suite": "meta", "system": s, "dataset": ds, "metric": "scan_matches_ok", "value": int(v == ref),
                    "unit": "bool", "note": "%d matches, the reference (Python) %d" % (v, ref)})
    return out


def meta_fmt(metric, v):
    if v is None:
        return "-"
    if metric == "bytes_per_doc":
        return "%.1f" % v
    if metric in ("file_bytes", "scan_matches") or abs(v) >= 1000:
        return "%.0f" % v
    return "%.4g" % v


def meta_print(rows):
    """The text form of bench meta: the systems x metrics table, the ratios, the notes."""
    by = {(r["system"], r["metric"]): r for r in rows}
    systems = [s for s in META_SYSTEMS if s.startswith("nusterdb-") or any(k[0] == s for k in by)]
    systems += sorted({r["system"] for r in rows} - set(systems))  # e.g. "nusterdb": its whole driver's run
    metrics = META_METRICS + sorted({r["metric"] for r in rows if r["unit"] != "ratio" and r["metric"] != "scan_matches_ok"}
                                    - set(META_METRICS))
    ds = rows[0]["dataset"]
    print("meta: %s, systems x metrics (- : not measured)" % ds)
    w = [max(15, len(m)) + 2 for m in metrics]
    print("%-20s" % "system" + "".join("%*s" % (n, m) for n, m in zip(w, metrics)))
    for s in systems:
        print("%-20s" % s + "".join("%*s" % (n, meta_fmt(m, by[(s, m)]["value"] if (s, m) in by else None))
                                    for n, m in zip(w, metrics)))
    derived = [r for r in rows if r["unit"] in ("ratio", "bool")]
    if derived:
        print("\n%-20s %-26s %10s %-8s %s" % ("system", "metric", "value", "goal", "note"))
        for r in derived:
            v = "n/a" if r["value"] is None else ("%.3f" % r["value"] if r["unit"] == "ratio" else "%d" % r["value"])
            print("%-20s %-26s %10s %-8s %s" % (r["system"], r["metric"], v, r.get("goal", ""), r.get("note", "")))
    notes = [r for r in rows if r.get("note") and r["unit"] not in ("ratio", "bool")]
    if notes:
        print("\nnotes:")
        for r in notes:
            print("  %s %s: %s" % (r["system"], r["metric"], r["note"]))


FILTER_SYSTEMS = ["nusterdb", "usearch", "faiss", "hnswlib"]
FILTER_LEVEL = 0.95
FILTER_CURVE = re.compile(r"(qps|recall)_(s[0-9.]+)_ef(\d+)")
FILTER_ORDER = ["other_processes_cpu_share", "selectivity_", "build_seconds", "recall_", "results_short_",
                "not_allowed_", "qps_s", "qps_at_recall_", "qps_ratio_"]


def filter_sel(name):
    """The nominal selectivity in a filter's name (s0.01 -> 0.01)."""
    try:
        return float(name[1:])
    except ValueError:
        return 0.0


def filter_curves(rows):
    """{filter name: {system: [(ef, recall, qps)] sorted by ef}} from the filter rows."""
    pts = {}
    for r in rows:
        m = FILTER_CURVE.fullmatch(r["metric"])
        if r["suite"] == "filter" and m and r["value"] is not None:
            pts.setdefault(m.group(2), {}).setdefault(r["system"], {}).setdefault(int(m.group(3)), {})[
                m.group(1)] = r["value"]
    return {name: {s: sorted((ef, v["recall"], v["qps"]) for ef, v in d.items() if "recall" in v and "qps" in v)
                   for s, d in by_sys.items()}
            for name, by_sys in pts.items()}


def filter_systems(present):
    return [s for s in FILTER_SYSTEMS if s in present] + sorted(s for s in present if s not in FILTER_SYSTEMS)


def filter_rows(rows):
    """The derived rows of bench filter: each system's QPS at recall 0.95 per filter, and
    NusterDB's ratio to the fastest peer there (peers: every system but nusterdb and its
    variants nusterdb-*)."""
    out = []
    ds = "fashion-mnist-784"
    level = FILTER_LEVEL
    cv = filter_curves(rows)
    for name in sorted(cv, key=filter_sel, reverse=True):
        at = {}
        for s in filter_systems([s for s in cv[name] if cv[name][s]]):
            at[s] = qps_at(cv[name][s], level)
            out.append({"suite": "filter", "system": s, "dataset": ds, "metric": "qps_at_recall_%g_%s" % (level, name),
                        "value": at[s][0], "unit": "queries/s",
                        "note": "filter %s, single thread, recall@10 %g: %s" % (name, level, at[s][1])})
        if "nusterdb" not in at:
            continue
        peers = [s for s in at if not s.startswith("nusterdb")]  # nusterdb-*: NusterDB's variants
        reached = {p: at[p][0] for p in peers if at[p][0]}
        never = [p for p in peers if not at[p][0]]
        mine = at["nusterdb"][0]
        if not peers:
            value, note = None, "n/a: no peer ran filter %s" % name
        elif mine is None:
            value, note = None, "n/a: NusterDB never reaches recall@10 %g at filter %s (%s)" % (
                level, name, at["nusterdb"][1])
        elif not reached:
            value, note = None, "n/a: no peer reaches recall@10 %g at filter %s (%s never do)" % (
                level, name, ", ".join(never))
        else:
            best = max(reached, key=reached.get)
            value = mine / reached[best]
            note = "NusterDB QPS / %s QPS (the fastest peer there, %.0f/s), both at recall@10 %g, filter %s" % (
                best, reached[best], level, name)
            if never:
                note += "; %s never reach %g" % (", ".join(never), level)
        out.append({"suite": "filter", "system": "nusterdb", "dataset": ds,
                    "metric": "qps_ratio_vs_best_peer_at_recall_%g_%s" % (level, name), "value": value,
                    "unit": "ratio", "note": note})
    return out


def filter_sort(rows):
    """The filter rows: the run's own (CPU share, selectivities, builds) first, then per
    filter (by selectivity, descending) by metric kind, ef and system."""
    def key(r):
        m = r["metric"]
        pos = next((i for i, p in enumerate(FILTER_ORDER) if m.startswith(p)), len(FILTER_ORDER))
        name = re.search(r"_(s[0-9.]+)(_ef\d+)?$", m)
        ef = re.search(r"_ef(\d+)$", m)
        sysi = FILTER_SYSTEMS.index(r["system"]) if r["system"] in FILTER_SYSTEMS else len(FILTER_SYSTEMS)
        per_filter = pos >= FILTER_ORDER.index("recall_")
        sel = -filter_sel(name.group(1)) if name else 0
        return (per_filter, sel if per_filter else 0, pos, sel, int(ef.group(1)) if ef else 0, sysi, m)
    return sorted(rows, key=key)


def filter_print(rows):
    """The filter part of the table output: recall / QPS by ef per filter, then QPS at
    recall 0.95 and NusterDB's ratio to the best peer."""
    cv = filter_curves(rows)
    sel = {r["metric"][len("selectivity_"):]: r for r in rows if r["metric"].startswith("selectivity_")}
    derived = {(r["system"], r["metric"]): r for r in rows}
    names = sorted(cv, key=filter_sel, reverse=True)
    for name in names:
        systems = filter_systems([s for s in cv[name] if cv[name][s]])
        what = " (selectivity %.4f: %s)" % (sel[name]["value"], sel[name].get("note", "")) if name in sel else ""
        print("\nfilter %s%s: recall@10 / single-thread queries per second, by ef" % (name, what))
        print("%6s" % "ef" + "".join("  %-22s" % s for s in systems))
        for ef in sorted({p[0] for s in systems for p in cv[name][s]}):
            cells = []
            for s in systems:
                p = [q for q in cv[name][s] if q[0] == ef]
                cells.append("  %-22s" % ("%.4f / %.0f" % (p[0][1], p[0][2]) if p else "-"))
            print("%6d" % ef + "".join(cells))
    systems = filter_systems({s for name in names for s in cv[name] if cv[name][s]})
    print("\nfilter: single-thread queries per second at recall@10 %g (n/a: never reached)" % FILTER_LEVEL)
    print("%-8s" % "filter" + "".join("  %10s" % s for s in systems) + "  NusterDB / best peer")
    for name in names:
        cells = []
        for s in systems:
            r = derived.get((s, "qps_at_recall_%g_%s" % (FILTER_LEVEL, name)))
            cells.append("  %10s" % ("-" if r is None else "n/a" if r["value"] is None else "%.0f" % r["value"]))
        r = derived.get(("nusterdb", "qps_ratio_vs_best_peer_at_recall_%g_%s" % (FILTER_LEVEL, name)))
        ratio = "-" if r is None else "%.3f (%s)" % (r["value"], r["note"]) if r["value"] is not None else r["note"]
        print("%-8s" % name + "".join(cells) + "  %s" % ratio)


def hnsw_sort(rows):
    """Group the hnsw rows by data set, metric (in HNSW_ORDER, then ef or recall level),
    then system."""
    order = hnsw_datasets(rows)

    def key(r):
        m = r["metric"]
        pos = HNSW_ORDER.index(m) if m in HNSW_ORDER else next(
            (i for i, p in enumerate(HNSW_ORDER) if m.startswith(p)), len(HNSW_ORDER))
        num = re.search(r"(\d+(\.\d+)?)$", m) if pos in CURVE_POS or m.startswith(("qps_at", "qps_ratio")) else None
        sysi = HNSW_SYSTEMS.index(r["system"]) if r["system"] in HNSW_SYSTEMS else len(HNSW_SYSTEMS)
        return (order.index(r["dataset"]), min(pos, min(CURVE_POS)) if pos in CURVE_POS else pos,
                float(num.group(1)) if num else 0, m, sysi)
    return sorted(rows, key=key)


def plot(rows, path, ds=None):
    """Draw the recall/QPS curves of data set ds (None: the rows' only or first one)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = ds or hnsw_datasets(rows)[0]
    rows = [r for r in rows if r["dataset"] == ds]
    cv = curves(rows)
    colours = {"nusterdb": "tab:red", "hnswlib": "tab:blue", "usearch": "tab:purple", "faiss": "tab:green"}
    markers = {"nusterdb": "o", "hnswlib": "s", "usearch": "D", "faiss": "^"}
    lo = min([0.8] + [p[1] for c in cv.values() for p in c if p[1] >= 0.5])
    fig, ax = plt.subplots(figsize=(9, 6.5))
    for i, s in enumerate([s for s in HNSW_SYSTEMS if s in cv] + [s for s in cv if s not in HNSW_SYSTEMS]):
        ef, rec, qps = zip(*cv[s])
        ax.plot(rec, qps, marker=markers.get(s, "x"), color=colours.get(s), label=s, linewidth=1.5, markersize=5)
        for e, x, y in zip(ef, rec, qps):
            if x >= lo:
                ax.annotate("ef %d" % e, (x, y), textcoords="offset points", xytext=(4, 5 - 11 * (i % 3 == 1)),
                            fontsize=7, color=colours.get(s))
    ax.set_xlim(lo, 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("Recall@10 (tie-aware)")
    ax.set_ylabel("Queries per second (1/s), one thread")
    metric = "cosine" if ds.startswith("lowrank") else "euclidean"
    ax.set_title("%s-%s, k = 10, M 16, ef_construction 200" % (ds, metric))
    ax.grid(True, which="both", linestyle=":", linewidth=0.6)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fmt_value(r):
    v = r["value"]
    if v is None:
        return "n/a"
    if r["unit"] == "bytes":
        return "%d" % v
    if abs(v) >= 1000:
        return "%.0f" % v
    return "%.4g" % v


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    # --plot PATH (every hnsw row: one data set) or --plot DATASET=PATH, repeatable
    plots = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--plot"]
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
    hnsw = [r for r in rows if r["suite"] == "hnsw"]
    if hnsw:
        hnsw = hnsw_sort(hnsw + hnsw_rows(hnsw))
        rows = [r for r in rows if r["suite"] != "hnsw"] + hnsw
    filt = [r for r in rows if r["suite"] == "filter"]
    if filt:
        filt = filter_sort(filt + filter_rows(filt))
        rows = [r for r in rows if r["suite"] != "filter"] + filt
    meta = [r for r in rows if r["suite"] == "meta"]
    if meta:
        meta += meta_rows(meta)
        rows = [r for r in rows if r["suite"] != "meta"] + meta
    drawn = []
    for p in plots if hnsw else []:
        ds, _, path = p.rpartition("=")
        if ds and ds not in hnsw_datasets(hnsw):
            continue
        plot(hnsw, path, ds or None)
        drawn.append(path)
    if as_json:
        for r in rows:
            print(json.dumps(r))
        for path in drawn:
            print("plot: %s" % path, file=sys.stderr)
        return
    if meta:
        meta_print(meta)
        rows = [r for r in rows if r["suite"] != "meta"]
        if not rows:
            return
        print()
    print("%-7s %-9s %-18s %-45s %14s %-10s %s" % ("suite", "system", "dataset", "metric", "value", "unit", "note"))
    for r in rows:
        print("%-7s %-9s %-18s %-45s %14s %-10s %s" % (r["suite"], r["system"], r["dataset"], r["metric"],
                                                      fmt_value(r), r["unit"], r.get("note", "")))
    if filt:
        filter_print(filt)
    for ds in hnsw_datasets(hnsw):
        cv = curves([r for r in hnsw if r["dataset"] == ds])
        systems = [s for s in HNSW_SYSTEMS if s in cv]
        efs = sorted({p[0] for s in systems for p in cv[s]})
        print("\nhnsw %s: recall@10 / single-thread queries per second, by ef" % ds)
        print("%6s" % "ef" + "".join("  %-22s" % s for s in systems))
        for ef in efs:
            cells = []
            for s in systems:
                p = [q for q in cv[s] if q[0] == ef]
                cells.append("  %-22s" % ("%.4f / %.0f" % (p[0][1], p[0][2]) if p else "-"))
            print("%6d" % ef + "".join(cells))
        summary = {r["metric"]: r for r in hnsw if r["dataset"] == ds and r["system"] == "nusterdb"}
        for m in ["recall_at_default_ef"] + ["qps_ratio_vs_best_peer_at_recall_%g" % lv for lv in HNSW_BEST_LEVELS] + [
                "build_time_ratio_vs_hnswlib", "file_size_ratio_vs_hnswlib_file"]:
            r = summary.get(m)
            if r is not None:
                v = "not reached" if r["value"] is None else "%.4g" % r["value"]
                print("  %-38s %-12s %s" % (m, v, r.get("note", "") if m.startswith(("qps", "recall")) else ""))
    for path in drawn:
        print("\nplot: %s" % path)


if __name__ == "__main__":
    main()
