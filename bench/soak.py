"""bench soak: every part of NusterDB running at once against one file, with kill -9.

    soak.py BUILD OUT [--minutes N] [--json] [--seed S] [--keep]
    soak.py --role ROLE WORK ...       (the processes the supervisor starts)

One writer process (ids it chooses; inserts in batches, vector and document updates,
document-only updates, deletes, snapshots it creates and restores), two reader
processes (one with two threads: filtered searches, gets, exports through nvf-tool,
each result checked for self-consistency), a snapshot process (nvf-tool snapshot
create/delete, reads of the writer's snapshots), a compactor (nvf-tool compact), a
backup process (nvf-tool backup, each backup checked with nvf-tool check), and, when
/dev/fuse is usable, nusterfs mounted with a client writing query files and reading
records. Every 1 to 5 seconds the supervisor kills one of them (writer included) with
SIGKILL and starts it again (nusterfs: lazy unmount, mount again).

The writer's ack log (WORK/acklog, JSON lines): before each call an "intent" line
with the whole operation (enough to replay it), after the call returned an "ack"
line, fsync'd (or "fail" if it raised: nothing was committed). After every kill of
the writer, before it is started again, and at the end, the auditor replays the log
into a model and reads every record and every writer snapshot: the database must
hold the state after the last acknowledged operation, or the state after the one
operation in flight when the writer died (the auditor then writes a "resolve" line
saying which). Anything else counts as lost (the model is then rebased on what the
file holds, so that one loss is counted once). `nvf-tool check` runs after every
kill and must exit 0; a failure counts as corrupt. Both must stay 0.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib

DIM = 16
GROUPS = 7
LOW, HIGH = 1500, 2500
STALE = "was compacted into a new file since this handle opened it"  # the writer keeps the record count between these


# ---- the model: the ack log replayed ----

def vector(i, vseed):
    """Record i's vector for seed vseed: component 0 is the id, so any record read
    anywhere tells whether its vector is its own."""
    r = random.Random(vseed * 1_000_003 + i)
    import array
    return array.array("f", [float(i)] + [r.random() for _ in range(DIM - 1)]).tolist()


def document(i, seq, w):
    return {"id": i, "grp": i % GROUPS, "seq": seq, "w": w}


def apply_op(state, snaps, op):
    """The state after op (a new dict; the old one is untouched). state: id ->
    (vector list, document dict). snaps: name -> state."""
    k = op["op"]
    if k == "snap":
        return state
    if k == "restore":
        return dict(snaps[op["name"]])
    s = dict(state)
    if k == "add":
        for i, vs, w in zip(op["ids"], op["vs"], op["ws"]):
            s[i] = (vector(i, vs), document(i, op["seq"], w))
    elif k == "upsert":
        s[op["id"]] = (vector(op["id"], op["vs"]), document(op["id"], op["seq"], op["w"]))
    elif k == "meta":
        s[op["id"]] = (s[op["id"]][0], document(op["id"], op["seq"], op["w"]))
    elif k == "delete":
        del s[op["id"]]
    return s


def read_log(path):
    """The log's complete lines (a torn last line, from a writer killed while writing
    it, is dropped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            out.append(json.loads(raw))
    return out


def replay(lines):
    """(state, snaps, last seq, largest id ever used, the op in flight or None)."""
    state, snaps, inflight, last, top = {}, {}, None, 0, -1
    pending = {}
    for e in lines:
        k = e["k"]
        if k == "intent":
            pending[e["seq"]] = e["op"]
            last = max(last, e["seq"])
            op = e["op"]
            top = max([top] + op.get("ids", []) + ([op["id"]] if "id" in op else []))
        elif k in ("ack", "resolve") and e.get("applied", True) and e["seq"] in pending:
            op = pending.pop(e["seq"])
            state = apply_op(state, snaps, op)
            if op["op"] == "snap":
                snaps[op["name"]] = state
        elif k in ("fail", "resolve"):
            pending.pop(e["seq"], None)
        elif k == "rebase":
            pending.clear()
            state = {int(i): (v, d) for i, (v, d) in e["state"].items()}
            snaps = {n: {int(i): (v, d) for i, (v, d) in st.items()} for n, st in e["snaps"].items()}
    if pending:
        inflight = max(pending.items())
    return state, snaps, last, top, inflight


def append_line(path, obj, sync=True):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def heal_log(path):
    """Cut a torn last line, so that the next line starts on its own."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


# ---- counters every role keeps (a file rewritten each half second) ----

class Counts:
    def __init__(self, work, role):
        self.path = os.path.join(work, "counts", f"{role}-{os.getpid()}.json")
        self.c = {}
        self.lock = threading.Lock()
        self.last = 0.0

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n
        self.flush()

    def flush(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        with self.lock:
            data = json.dumps(self.c)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.path)


def problem(work, role, what):
    """A self-consistency failure seen by a client: reported by the supervisor."""
    append_line(os.path.join(work, "problems"), {"role": role, "pid": os.getpid(), "what": what[:500]}, sync=False)


# ---- the roles ----

def role_writer(work, tool, seed):
    import nusterdb
    db_path = os.path.join(work, "soak.nvf")
    log = os.path.join(work, "acklog")
    cnt = Counts(work, "writer")
    state, snaps, seq, top, inflight = replay(read_log(log))
    assert inflight is None, "the auditor resolves the op in flight before the writer starts"
    rng = random.Random(seed ^ os.getpid())
    db = nusterdb.NusterDB.open(db_path, timeout=30.0)
    while True:
        seq += 1
        ids = sorted(state)
        r = rng.random()
        n = len(ids)
        if n < LOW or (r < 0.25 and n < HIGH):
            k = rng.randint(1, 8)
            op = {"op": "add", "ids": list(range(top + 1, top + 1 + k)), "vs": [rng.randrange(1 << 30) for _ in range(k)],
                  "ws": [rng.randrange(100) for _ in range(k)]}
            top += k
        elif r < 0.45:
            op = {"op": "upsert", "id": rng.choice(ids), "vs": rng.randrange(1 << 30), "w": rng.randrange(100)}
        elif r < 0.65:
            op = {"op": "meta", "id": rng.choice(ids), "w": rng.randrange(100)}
        elif r < 0.9 or n > HIGH:
            op = {"op": "delete", "id": rng.choice(ids)}
        elif r < 0.96 or not snaps:
            op = {"op": "snap", "name": f"w-{seq}"}
        else:  # one of the newest: the snapshot process deletes the older ones
            op = {"op": "restore", "name": rng.choice(sorted(snaps, key=lambda m: int(m[2:]))[-3:])}
        op["seq"] = seq
        append_line(log, {"k": "intent", "seq": seq, "op": op}, sync=False)
        try:
            k = op["op"]
            if k == "add":
                import numpy as np
                X = np.array([vector(i, vs) for i, vs in zip(op["ids"], op["vs"])], dtype=np.float32)
                db.add_items(X, ids=np.array(op["ids"], dtype=np.int64),
                             metadata=[document(i, seq, w) for i, w in zip(op["ids"], op["ws"])])
            elif k == "upsert":
                db.upsert(op["id"], vector(op["id"], op["vs"]), document(op["id"], seq, op["w"]))
            elif k == "meta":
                db.update_metadata(op["id"], document(op["id"], seq, op["w"]))
            elif k == "delete":
                if not db.delete(op["id"]):
                    raise RuntimeError(f"delete of {op['id']}: no such record, the model has it")
            elif k == "snap":
                db.snapshot(op["name"], {"seq": seq})
            elif k == "restore":
                db.restore_snapshot(op["name"])
        except nusterdb.StaleError:
            append_line(log, {"k": "fail", "seq": seq, "err": "stale"})
            db.close()
            db = nusterdb.NusterDB.open(db_path, timeout=30.0)
            cnt.add("stale_reopens")
            continue
        except (nusterdb.LockedError, nusterdb.NotFoundError) as e:
            # Locked: a long compaction; NotFound: the snapshot process deleted
            # the snapshot to restore. Nothing was written.
            append_line(log, {"k": "fail", "seq": seq, "err": type(e).__name__})
            cnt.add("failed_" + type(e).__name__)
            if isinstance(e, nusterdb.NotFoundError) and op["op"] == "restore":
                snaps.pop(op["name"], None)
            continue
        d = zlib.crc32(json.dumps(op, sort_keys=True).encode())
        append_line(log, {"k": "ack", "seq": seq, "d": d})
        time.sleep(rng.uniform(0, 0.01))  # let nvf-tool (which does not wait) take the write lock too
        state = apply_op(state, snaps, op)
        if op["op"] == "snap":
            snaps[op["name"]] = state
        cnt.add("op_" + op["op"])


def check_record(vec, doc, i, where):
    if vec is not None and int(vec[0]) != i:
        return f"{where}: record {i} holds the vector of record {vec[0]}"
    if doc is not None and (doc.get("id") != i or doc.get("grp") != i % GROUPS):
        return f"{where}: record {i} holds the document {doc}"
    return None


def role_reader(work, tool, seed, threads):
    import nusterdb
    db_path = os.path.join(work, "soak.nvf")
    cnt = Counts(work, "reader")
    stop = threading.Event()

    def loop(t):
        rng = random.Random(seed ^ os.getpid() ^ (t << 20))
        db = None
        while not stop.is_set():
            time.sleep(rng.uniform(0.002, 0.02))  # leave the shared cores some air
            try:
                if db is None:
                    db = nusterdb.NusterDB.open(db_path, read_only=True)
                if t == 0 and rng.random() < 0.05:
                    export_check(rng)
                    continue
                g, w = rng.randrange(GROUPS), rng.randrange(100)
                q = [float(rng.randrange(4000))] + [rng.random() for _ in range(DIM - 1)]
                res = db.search(q, k=10, filter=f"grp = {g} AND w < {w}")
                cnt.add("search")
                dists = [d for _, d in res]
                if dists != sorted(dists):
                    problem(work, "reader", f"search results not nearest first: {res}")
                for i, _ in res[:3]:
                    doc = db.get_metadata(i)
                    vec = db.get(i)
                    cnt.add("get")
                    if doc is not None and doc.data.get("grp") != g:
                        problem(work, "reader", f"filter grp = {g} returned record {i} of group {doc.data.get('grp')}")
                    why = check_record(list(vec) if vec is not None else None, doc.data if doc is not None else None, i, "get")
                    if why:
                        problem(work, "reader", why)
            except nusterdb.StaleError:
                db.close()
                db = None
                cnt.add("stale_reopens")
            except Exception as e:  # noqa: BLE001 -- every surprise is reported
                problem(work, "reader", f"{type(e).__name__}: {e}")
                time.sleep(0.2)

    def export_check(rng):
        out = os.path.join(work, "tmp", f"export-{os.getpid()}-{rng.randrange(1 << 30)}.jsonl")
        p = subprocess.run([tool, "export", db_path, out, "--format", "jsonl", "--quiet"], capture_output=True, text=True)
        if p.returncode != 0:
            problem(work, "reader", f"export: {p.stderr.strip()}")
            return
        n = 0
        with open(out) as f:
            for line in f:
                rec = json.loads(line)
                why = check_record(rec.get("vector"), rec.get("meta"), rec["id"], "export")
                if why:
                    problem(work, "reader", why)
                n += 1
        os.unlink(out)
        cnt.add("export")
        cnt.add("export_records", n)

    ts = [threading.Thread(target=loop, args=(t,), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def run_tool(cnt, work, role, args, ok=(0,)):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode == 3 and "holds the write lock" in p.stderr:
        cnt.add("busy_locked")  # nvf-tool does not wait for the writer: try again later
    elif p.returncode == 3 and STALE in p.stderr:
        # nvf-tool opened the file just before a compaction renamed the copy over it,
        # and does not open it again (NVF_ESTALE at its first transaction; nothing
        # was written): a known limit of the tool, counted, not a problem of the file.
        cnt.add("tool_stale")
    elif p.returncode not in ok:
        problem(work, role, f"{' '.join(os.path.basename(a) for a in args[:2])}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def role_snapshots(work, tool, seed):
    import nusterdb
    db_path = os.path.join(work, "soak.nvf")
    cnt = Counts(work, "snapshots")
    rng = random.Random(seed ^ os.getpid())
    while True:
        time.sleep(rng.uniform(0.3, 1.0))
        p = run_tool(cnt, work, "snapshots", [tool, "snapshot", "list", db_path, "--json"])
        if p.returncode != 0:
            continue
        names = [s["name"] for s in json.loads(p.stdout)]
        mine = [n for n in names if n.startswith("s-")]
        theirs = [n for n in names if n.startswith("w-")]
        r = rng.random()
        if r < 0.35:
            name = f"s-{os.getpid()}-{rng.randrange(1 << 30)}"
            if run_tool(cnt, work, "snapshots", [tool, "snapshot", "create", db_path, name]).returncode == 0:
                cnt.add("create")
        elif r < 0.7 and (len(mine) > 2 or len(theirs) > 3):
            victim = mine[0] if len(mine) > 2 else theirs[0]
            # The writer may restore it meanwhile, or the other list be stale: a
            # missing name is fine (exit 3, "no snapshot").
            if run_tool(cnt, work, "snapshots", [tool, "snapshot", "delete", db_path, victim], ok=(0, 3)).returncode == 0:
                cnt.add("delete")
        elif theirs:
            name = rng.choice(theirs)
            try:
                with nusterdb.NusterDB.open(db_path, read_only=True, snapshot=name) as s:
                    for i, _ in s.search([float(rng.randrange(4000))] + [0.5] * (DIM - 1), k=5):
                        vec, doc = s.get(i), s.get_metadata(i)
                        why = check_record(list(vec) if vec is not None else None, doc.data if doc is not None else None, i,
                                           f"snapshot {name}")
                        if why:
                            problem(work, "snapshots", why)
                cnt.add("read")
            except (nusterdb.NotFoundError, nusterdb.StaleError):
                cnt.add("read_gone")


def role_compact(work, tool, seed):
    db_path = os.path.join(work, "soak.nvf")
    cnt = Counts(work, "compact")
    rng = random.Random(seed ^ os.getpid())
    while True:
        time.sleep(rng.uniform(1.0, 4.0))
        if run_tool(cnt, work, "compact", [tool, "compact", db_path, "--quiet"]).returncode == 0:
            cnt.add("compact")


def role_backup(work, tool, seed):
    db_path = os.path.join(work, "soak.nvf")
    cnt = Counts(work, "backup")
    rng = random.Random(seed ^ os.getpid())
    bdir = os.path.join(work, "backups")
    while True:
        time.sleep(rng.uniform(1.0, 4.0))
        dest = os.path.join(bdir, f"b-{os.getpid()}-{rng.randrange(1 << 30)}.nvf")
        if run_tool(cnt, work, "backup", [tool, "backup", db_path, dest, "--quiet"]).returncode != 0:
            continue
        cnt.add("backup")
        p = subprocess.run([tool, "check", dest], capture_output=True, text=True)
        if p.returncode != 0:
            problem(work, "backup", f"check of backup {dest}: exit {p.returncode}: {p.stderr.strip()}")
            cnt.add("backup_corrupt")
        for f in (dest, dest + "-lock"):
            if os.path.exists(f):
                os.unlink(f)


def role_fsclient(work, tool, seed, mnt):
    cnt = Counts(work, "fsclient")
    rng = random.Random(seed ^ os.getpid())
    qdir = os.path.join(mnt, "queries")
    n = 0
    while True:
        n += 1
        time.sleep(rng.uniform(0.002, 0.02))
        try:
            g = rng.randrange(GROUPS)
            q = {"vector": [float(rng.randrange(4000))] + [rng.random() for _ in range(DIM - 1)], "k": 8,
                 "filter": f"grp = {g}"}
            name = f"c{os.getpid()}-{n % 4}"
            with open(os.path.join(qdir, name + ".json"), "w") as f:
                f.write(json.dumps(q))
            with open(os.path.join(qdir, name + ".result.json")) as f:
                res = json.load(f)
            cnt.add("query")
            if res["distances"] != sorted(res["distances"]):
                problem(work, "fsclient", f"query result not nearest first: {res}")
            for i in res["ids"][:2]:
                try:
                    with open(os.path.join(mnt, "meta", f"{i}.json")) as f:
                        doc = json.load(f)
                    with open(os.path.join(mnt, "vectors", str(i)), "rb") as f:
                        import array
                        vec = array.array("f", f.read()).tolist()
                except FileNotFoundError:
                    continue  # deleted since the query
                cnt.add("read")
                if doc is not None and doc.get("grp") != g:
                    problem(work, "fsclient", f"filter grp = {g} returned record {i} of group {doc.get('grp')}")
                why = check_record(vec if len(vec) == DIM else None, doc, i, "nusterfs")
                if why:
                    problem(work, "fsclient", why)
        except OSError as e:
            # The daemon was killed (ENOTCONN) or is being mounted again: wait.
            cnt.add("fs_unavailable")
            time.sleep(0.3)


# ---- the supervisor ----

class Soak:
    KINDS = ["writer", "reader1", "reader2", "snapshots", "compact", "backup", "nusterfs", "fsclient"]

    def __init__(self, build, out, minutes, seed, keep):
        self.tool = os.path.join(build, "tools", "nvf-tool")
        self.fs = os.path.join(build, "nusterfs", "nusterfs")
        self.pypath = os.path.join(build, "python")
        sys.path.insert(0, self.pypath)  # the auditor reads through the build's module
        self.work = tempfile.mkdtemp(prefix="soak-", dir=out)
        self.db = os.path.join(self.work, "soak.nvf")
        self.log = os.path.join(self.work, "acklog")
        self.seconds = minutes * 60.0
        self.seed = seed
        self.keep = keep
        self.rng = random.Random(seed)
        self.procs = {}
        self.kills = {k: 0 for k in self.KINDS}
        self.restarts = 0
        self.audits = 0
        self.lost = 0
        self.corrupt = 0
        self.check_stale = 0
        self.notes = []
        self.audit_errors = 0
        self.use_fs = os.access("/dev/fuse", os.W_OK) and shutil.which("fusermount3") is not None
        self.mnt = os.path.join(self.work, "mnt")
        for d in ("counts", "tmp", "backups", "mnt"):
            os.makedirs(os.path.join(self.work, d))

    def spawn(self, kind):
        me = os.path.abspath(__file__)
        env = dict(os.environ, PYTHONPATH=self.pypath, OMP_NUM_THREADS="1")
        seed = str(self.rng.randrange(1 << 30))
        base = [sys.executable, me, "--role"]
        args = {
            "writer": base + ["writer", self.work, self.tool, seed],
            "reader1": base + ["reader", self.work, self.tool, seed, "1"],
            "reader2": base + ["reader", self.work, self.tool, seed, "2"],
            "snapshots": base + ["snapshots", self.work, self.tool, seed],
            "compact": base + ["compact", self.work, self.tool, seed],
            "backup": base + ["backup", self.work, self.tool, seed],
            "fsclient": base + ["fsclient", self.work, self.tool, seed, self.mnt],
            "nusterfs": [self.fs, self.db, self.mnt, "-f"],
        }[kind]
        err = open(os.path.join(self.work, f"{kind}.stderr"), "a")
        # Its own process group: a kill takes the nvf-tool it may be running with it
        # (a compaction or backup in progress dies, not just the loop around it).
        self.procs[kind] = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        err.close()
        if kind == "nusterfs":
            end = time.monotonic() + 10
            while not os.path.ismount(self.mnt) and time.monotonic() < end:
                time.sleep(0.02)

    def unmount(self):
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self, kind):
        p = self.procs[kind]
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        if kind == "nusterfs":
            self.unmount()

    def check_file(self, when):
        for _ in range(10):  # a compaction between the tool's open and its check: again
            p = subprocess.run([self.tool, "check", self.db], capture_output=True, text=True)
            if not (p.returncode == 3 and STALE in p.stderr):
                break
            self.check_stale += 1
        if p.returncode != 0:
            self.corrupt += 1
            self.notes.append(f"check after {when}: exit {p.returncode}: {p.stderr.strip()[:300]}")

    def read_db(self, snapshot=None):
        """Every record of the current state (or a snapshot): id -> (vector, doc).
        The writer is stopped, so records do not change meanwhile; a compaction by
        another process makes the handle stale: read again."""
        import nusterdb
        for _ in range(20):
            try:
                with nusterdb.NusterDB.open(self.db, read_only=True, snapshot=snapshot) as h:
                    out = {}
                    n = h.count()
                    # Ids are below next_id; read them all (a few thousand).
                    for i in range(h.next_id):
                        v = h.get(i)
                        if v is not None:
                            m = h.get_metadata(i)
                            out[i] = (list(v), m.data if m is not None else None)
                    if len(out) != n:
                        raise RuntimeError(f"count() says {n}, reading by id found {len(out)}")
                    return out
            except nusterdb.StaleError:
                time.sleep(0.05)
        raise RuntimeError("the file stayed stale for 20 tries")

    def audit(self, when):
        """An audit that cannot finish (an error reading the file) is counted and
        reported, and the run goes on: it must not end a 30-minute soak."""
        try:
            self._audit(when)
        except Exception as e:  # noqa: BLE001 -- any failure to audit is a finding
            self.audit_errors += 1
            self.notes.append(f"audit at {when} failed: {type(e).__name__}: {e}")

    def _audit(self, when):
        """The writer is not running: compare the file with the ack log's model."""
        self.audits += 1
        heal_log(self.log)
        state, snaps, _, _, inflight = replay(read_log(self.log))
        got = self.read_db()
        if inflight is not None:
            seq, op = inflight
            nxt = apply_op(state, snaps, op) if op["op"] != "restore" or op["name"] in snaps else None
            if op["op"] == "snap":
                names = self.snapshot_names()
                applied = op["name"] in names
                ok = got == state
            else:
                applied = nxt is not None and got == nxt and got != state
                ok = got == state or applied
            if ok:
                append_line(self.log, {"k": "resolve", "seq": seq, "applied": applied})
                if applied:
                    state = nxt
                    if op["op"] == "snap":
                        snaps[op["name"]] = state
            else:
                self.lost_at(when, state, got, f"neither the acknowledged state nor the one after op {op}")
                return
        elif got != state:
            self.lost_at(when, state, got, "not the acknowledged state")
            return
        # The writer's snapshots that still exist hold exactly the state they named.
        present = self.snapshot_names()
        for name, st in sorted(snaps.items()):
            if name in present:
                try:
                    sgot = self.read_db(snapshot=name)
                except Exception as e:  # noqa: BLE001 -- deleted meanwhile by the snapshot process
                    if name in self.snapshot_names():
                        raise
                    continue
                if sgot != st:
                    self.lost_at(f"{when}, snapshot {name}", st, sgot, "a snapshot changed")
                    return

    def snapshot_names(self):
        for _ in range(10):  # nvf-tool's NVF_ESTALE after a compaction (see run_tool): again
            p = subprocess.run([self.tool, "snapshot", "list", self.db, "--json"], capture_output=True, text=True)
            if not (p.returncode == 3 and STALE in p.stderr):
                break
        if p.returncode != 0:
            raise RuntimeError(f"nvf-tool snapshot list: exit {p.returncode}: {p.stderr.strip()}")
        return {s["name"] for s in json.loads(p.stdout)}

    def lost_at(self, when, want, got, why):
        self.lost += 1
        missing = [i for i in want if i not in got][:5]
        extra = [i for i in got if i not in want][:5]
        diff = [i for i in want if i in got and want[i] != got[i]][:5]
        self.notes.append(f"lost at {when}: {why}; missing {missing}, extra {extra}, differing {diff}"
                          + (f" e.g. {want[diff[0]]} != {got[diff[0]]}" if diff else ""))
        # Rebase on what the file holds, so that the soak goes on and counts each loss once.
        present = self.snapshot_names()
        snaps = {}
        for n in present:
            if n.startswith("w-"):
                try:
                    snaps[n] = self.read_db(snapshot=n)
                except Exception:  # noqa: BLE001
                    pass
        enc = lambda st: {str(i): [v, d] for i, (v, d) in st.items()}  # noqa: E731
        append_line(self.log, {"k": "rebase", "state": enc(got), "snaps": {n: enc(s) for n, s in snaps.items()}})

    def setup(self):
        subprocess.run([self.tool, "create", self.db, "--dim", str(DIM), "--index", "hnsw", "--M", "8",
                        "--ef-construction", "64", "--quiet"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([self.tool, "field", "add", self.db, "grp", "--type", "int", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)

    def run(self):
        self.setup()
        kinds = [k for k in self.KINDS if self.use_fs or k not in ("nusterfs", "fsclient")]
        if not self.use_fs:
            self.notes.append("no usable /dev/fuse: nusterfs not mounted")
        for k in kinds:
            self.spawn(k)
        t0 = time.monotonic()
        end = t0 + self.seconds
        try:
            while time.monotonic() < end:
                time.sleep(min(self.rng.uniform(1.0, 5.0), max(0.0, end - time.monotonic())))
                if time.monotonic() >= end:
                    break
                for k in kinds:  # a role that died by itself is a finding: say so, start it again
                    if self.procs[k].poll() is not None:
                        self.notes.append(f"{k} exited by itself with {self.procs[k].returncode} (see {k}.stderr)")
                        if k == "nusterfs":
                            self.unmount()
                        if k == "writer":
                            self.audit(f"writer exit at {time.monotonic() - t0:.1f} s")
                        self.spawn(k)
                # The writer is what the audit is about: a quarter of the kills.
                victim = "writer" if self.rng.random() < 0.25 else self.rng.choice(kinds)
                self.kill(victim)
                self.kills[victim] += 1
                when = f"kill {sum(self.kills.values())} ({victim}) at {time.monotonic() - t0:.1f} s"
                if victim == "writer":
                    self.audit(when)
                self.check_file(when)
                self.spawn(victim)
                self.restarts += 1
        finally:
            for k in kinds:
                self.kill(k)
        self.audit("the end")
        self.check_file("the end")
        return self.report(time.monotonic() - t0)

    def report(self, elapsed):
        ops = {}
        for f in os.listdir(os.path.join(self.work, "counts")):
            if f.endswith(".json"):
                role = f.split("-")[0]
                with open(os.path.join(self.work, "counts", f)) as fh:
                    for k, v in json.load(fh).items():
                        ops[f"{role}.{k}"] = ops.get(f"{role}.{k}", 0) + v
        problems = []
        p = os.path.join(self.work, "problems")
        if os.path.exists(p):
            with open(p) as f:
                problems = [json.loads(line) for line in f if line.endswith("\n")]
        leftovers = sorted(f for f in os.listdir(self.work) if ".compact-" in f or ".tmp" in f)
        leftovers += sorted(f for f in os.listdir(os.path.join(self.work, "backups")) if ".backup-" in f)
        acked = sum(1 for e in read_log(self.log) if e["k"] == "ack")
        rows = [("seconds", elapsed, "s", ""), ("acknowledged_commits", acked, "commits", "writer calls that returned")]
        for k in sorted(ops):
            rows.append((f"ops.{k}", ops[k], "ops", ""))
        rows.append(("ops_total", sum(v for k, v in ops.items() if not k.split(".")[1].startswith(("fs_unavail", "stale", "failed", "export_records", "read_gone", "busy", "tool_stale"))),
                     "ops", "every counted operation (retries and unavailability excluded)"))
        for k in self.KINDS:
            rows.append((f"kills.{k}", self.kills[k], "kills", ""))
        rows += [("kills_total", sum(self.kills.values()), "kills", "kill -9, every 1 to 5 s"),
                 ("restarts", self.restarts, "restarts", ""),
                 ("audits", self.audits, "audits", "after each kill of the writer and at the end"),
                 ("lost", self.lost, "count", "acknowledged state missing (must be 0)"),
                 ("corrupt", self.corrupt, "count", "nvf-tool check failures after a kill (must be 0)"),
                 ("audit_errors", self.audit_errors, "count", "audits that could not read the file (must be 0)"),
                 ("check_reruns_stale", self.check_stale, "count", "checks run again: the file was compacted between nvf-tool's open and its check"),
                 ("client_problems", len(problems), "count", "self-consistency failures and errors seen by readers, backups, nusterfs clients"),
                 ("leftover_temp_files", len(leftovers), "files", "temporary files of killed compactions/backups: " + " ".join(leftovers[:6]))]
        for n in self.notes:
            print("soak:", n, file=sys.stderr)
        for pr in problems[:20]:
            print("soak: problem:", pr, file=sys.stderr)
        if not self.keep and self.lost == 0 and self.corrupt == 0 and not problems:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"soak: work directory kept: {self.work}", file=sys.stderr)
        return rows


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, work, tool, seed = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if role == "writer":
            role_writer(work, tool, seed)
        elif role == "reader":
            role_reader(work, tool, seed, int(sys.argv[6]))
        elif role == "snapshots":
            role_snapshots(work, tool, seed)
        elif role == "compact":
            role_compact(work, tool, seed)
        elif role == "backup":
            role_backup(work, tool, seed)
        elif role == "fsclient":
            role_fsclient(work, tool, seed, sys.argv[6])
        return
    build, out = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    minutes, as_json, seed, keep = 2.0, False, int(time.time()), False
    i = 0
    while i < len(args):
        if args[i] == "--minutes":
            minutes = float(args[i + 1])
            i += 1
        elif args[i] == "--seed":
            seed = int(args[i + 1])
            i += 1
        elif args[i] == "--json":
            as_json = True
        elif args[i] == "--keep":
            keep = True
        else:
            sys.exit(f"bench soak: unknown argument {args[i]} (--minutes N, --json, --seed S, --keep)")
        i += 1
    print(f"soak: seed {seed} (--seed to repeat the schedule), {minutes} minutes", file=sys.stderr)
    rows = Soak(build, out, minutes, seed, keep).run()
    for metric, value, unit, note in rows:
        o = {"suite": "soak", "system": "nusterdb", "dataset": f"soak-dim{DIM}", "metric": metric,
             "value": round(value, 3) if isinstance(value, float) else value, "unit": unit}
        if note:
            o["note"] = note
        print(json.dumps(o), flush=True)


if __name__ == "__main__":
    main()
