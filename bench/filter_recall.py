"""Recall of bench filter, computed the same way for every system from the result ids
each driver wrote: every DIR/filter-ids-SYSTEM-NAME-efEF.i64 present (int64, NQ x 10,
-1 for none; any SYSTEM, NusterDB's too), against the exact filtered ground truth of
filter_data.py (a file of fewer queries than the ground truth is scored on the first
ones, with a warning) (DIR/gt-NAME.npy, gt-NAME-dist.npy, allowed-NAME.npy).

Tie-aware recall@10, as bench hnsw's: a returned id counts if it is one of the allowed
ids S of the filter and its true squared L2 distance to the query is at most the true
10th-nearest allowed distance (any of several rows tied at the 10th distance counts),
each id once; divided by NQ x min(10, |S|). True distances are float64 on the raw
pixels (integers 0..255: exact).

Prints JSON lines per (system, filter, ef): recall_NAME_efEF (unit recall) and
results_short_NAME_efEF, the share of queries that returned fewer than min(10, |S|)
ids (valid, distinct and allowed), and, only when some are, not_allowed_NAME_efEF: the
share of returned ids outside S (a wrong answer, whatever the recall).

usage: filter_recall.py BASE_IDX QUERIES_IDX DIR"""
import json
import os
import re
import sys

import numpy as np

from benchdata import idx_u8

K = 10
# SYSTEM may hold '-' (nusterdb-noindex): the filter name and ef are the last two parts.
PAT = re.compile(r"filter-ids-(?P<system>.+?)-(?P<name>s[0-9.]+)-ef(?P<ef>\d+)\.i64$")


def score(xb, bn, xq, qn, res, mask, kth, want):
    """(hits, short queries, returned ids not allowed) of result ids res (nq x K)."""
    hits = short = bad = 0
    for s in range(0, len(xq), 1000):
        r = res[s:s + 1000]
        valid = (r >= 0) & (r < len(xb))
        rr = np.where(valid, r, 0)
        ok = valid & mask[rr]
        bad += int((valid & ~mask[rr]).sum())
        # each id once: a repeat of the id just before it (in sorted order) is no hit
        srt = np.sort(np.where(ok, r, -1), axis=1)
        first = np.ones_like(srt, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        good = (srt >= 0) & first
        short += int((good.sum(axis=1) < want).sum())
        ss = np.where(srt >= 0, srt, 0)
        v = xb[ss].astype(np.float64)
        q = xq[s:s + 1000].astype(np.float64)
        d = bn[ss] + qn[s:s + 1000, None] - 2.0 * np.einsum("qkd,qd->qk", v, q)
        hits += int((good & (d <= kth[s:s + 1000, None])).sum())
    return hits, short, bad


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("usage: ")[1])
    base_path, query_path, out = sys.argv[1:4]
    found = []
    for f in sorted(os.listdir(out)):
        m = PAT.match(f)
        if m:
            found.append((m.group("system"), m.group("name"), int(m.group("ef")), f))
    if not found:
        print("filter_recall: no filter-ids-*.i64 in %s" % out, file=sys.stderr)
        return
    xb = idx_u8(base_path)
    xq_all = idx_u8(query_path)
    bf = xb.astype(np.float64)
    bn = (bf * bf).sum(axis=1)
    gts = {}
    status = 0
    for system, name, ef, f in sorted(found, key=lambda t: (t[1], t[0], t[2])):
        if name not in gts:
            try:
                gt = np.load(os.path.join(out, "gt-%s.npy" % name))
                gd = np.load(os.path.join(out, "gt-%s-dist.npy" % name))
                allowed = np.load(os.path.join(out, "allowed-%s.npy" % name))
            except OSError as e:
                print("filter_recall: %s: no ground truth for %s (%s)" % (f, name, e), file=sys.stderr)
                gts[name] = None
                continue
            nq = len(gt)
            xq = xq_all[:nq]
            qf = xq.astype(np.float64)
            mask = np.zeros(len(xb), dtype=bool)
            mask[allowed] = True
            want = min(K, len(allowed))
            kth = gd[:, want - 1] if want == K else np.full(nq, np.inf)
            gts[name] = (xq, (qf * qf).sum(axis=1), mask, kth, want, len(allowed))
        if gts[name] is None:
            continue
        xq, qn, mask, kth, want, count = gts[name]
        res = np.fromfile(os.path.join(out, f), dtype="<i8")
        nq = res.size // K
        if res.size % K or not 0 < nq <= len(xq):
            print("filter_recall: %s holds %d ids, expected 10 per query for at most %d queries: skipped"
                  % (f, res.size, len(xq)), file=sys.stderr)
            status = 1
            continue
        if nq < len(xq):
            print("filter_recall: %s: only the first %d of the %d queries of the ground truth"
                  % (f, nq, len(xq)), file=sys.stderr)
        hits, short, bad = score(xb, bn, xq[:nq], qn[:nq], res.reshape(nq, K), mask, kth[:nq], want)
        base = {"suite": "filter", "system": system, "dataset": "fashion-mnist-784"}
        print(json.dumps(dict(base, metric="recall_%s_ef%d" % (name, ef), value=hits / (nq * want), unit="recall",
                              note="tie-aware recall@10 over %d queries, filter %s (|S| %d), ef %d, against the "
                              "exact float64 filtered ground truth" % (nq, name, count, ef))), flush=True)
        print(json.dumps(dict(base, metric="results_short_%s_ef%d" % (name, ef), value=short / nq, unit="share",
                              note="share of the %d queries that returned fewer than min(10, |S|) = %d allowed "
                              "distinct ids" % (nq, want))), flush=True)
        if bad:
            print(json.dumps(dict(base, metric="not_allowed_%s_ef%d" % (name, ef), value=bad / (nq * K),
                                  unit="share", note="%d returned ids are not allowed by filter %s: wrong answers"
                                  % (bad, name))), flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
