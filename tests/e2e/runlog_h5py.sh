#!/bin/sh
# The run record from outside: h5py finds every object and attribute documented in
# docs/run-record.md with its documented dtype (and nothing undocumented), h5dump -H
# reads the file, a live SWMR reader follows the writer, and a writer killed with
# SIGKILL leaves a file whose flushed rows h5py reads and that resumes cleanly.
# The writer is the unit-test binary in its argument modes (tests/unit/test_runlog.c).
. tests/lib.sh
WRITER=$PWD/${BUILD:-build}/tests/test_runlog
DOC=$PWD/docs/run-record.md

if [ ! -x "$WRITER" ]; then
    not_ok "writer $WRITER not built (make tests)"
    exit 1
fi

check "sample run record written" "$WRITER" sample "$SCRATCH/sample.h5"

# Parse the table: rows whose first cell is a `/...` path; columns: path, kind, dtype,
# shape. Check each object and its dtype, then walk the file for undocumented ones.
check "every documented object has its documented dtype" $PY - "$DOC" "$SCRATCH/sample.h5" <<'EOF'
import re, sys
import h5py, numpy as np

doc, path = sys.argv[1], sys.argv[2]
rows = []
for line in open(doc):
    m = re.match(r"^\|\s*`(/[^`]*)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|", line)
    if m:
        rows.append((m.group(1), m.group(2).strip(), m.group(3).strip(), m.group(4).strip()))
assert len(rows) > 50, "documented objects not found in %s" % doc
NUM = {"int32": np.int32, "int64": np.int64, "float64": np.float64}
bad = []
f = h5py.File(path, "r")
M = len(f["/model"].attrs["modality_names"])
W = int(f.attrs["world_size"])

def dtype_ok(dt, want):
    base = want.split("[")[0]
    if base == "string":
        info = h5py.check_string_dtype(dt)
        return info is not None and info.length is None and info.encoding == "utf-8"
    return dt == np.dtype(NUM[base]).newbyteorder("<")

documented = set()
for p, kind, dtype, shape in rows:
    documented.add(p)
    if kind == "group":
        if not isinstance(f.get(p), h5py.Group):
            bad.append("%s: group missing" % p)
        continue
    if kind.startswith("attribute"):
        obj, name = p.split("@")
        holder = f[obj] if obj in f else None
        if holder is None or name not in holder.attrs:
            if "optional" not in kind:
                bad.append("%s: attribute missing" % p)
            continue
        a = holder.attrs.get_id(name)
        if not dtype_ok(a.dtype, dtype):
            bad.append("%s: dtype %s, documented %s" % (p, a.dtype, dtype))
        want = () if shape == "scalar" else (M,)
        if a.shape != want:
            bad.append("%s: shape %s, documented %s" % (p, a.shape, shape))
        v = holder.attrs[name]
        if dtype == "string" and not isinstance(v, str):
            bad.append("%s: h5py gives %r, not str" % (p, type(v)))
        continue
    d = f.get(p)
    if not isinstance(d, h5py.Dataset):
        bad.append("%s: dataset missing" % p)
        continue
    if not dtype_ok(d.dtype, dtype):
        bad.append("%s: dtype %s, documented %s" % (p, d.dtype, dtype))
    cols = {"(rows,)": (), "(eval_rows,)": (), "(rows, M)": (M,), "(eval_rows, M)": (M,),
            "(rows, W)": (W,)}
    if shape not in cols or d.shape[1:] != cols[shape] or d.shape[0] == 0:
        bad.append("%s: shape %s, documented %s" % (p, d.shape, shape))
    if d.maxshape[0] is not None or d.chunks is None:
        bad.append("%s: not an extendible chunked dataset" % p)

def walk(name, obj):
    p = "/" + name if name else "/"
    if p not in documented:
        bad.append("%s: in the file but not documented" % p)
    for a in obj.attrs:
        q = ("" if p == "/" else p) + "@" + a
        q = "/@" + a if p == "/" else q
        if q not in documented:
            bad.append("%s: in the file but not documented" % q)

walk("", f)
f.visititems(walk)
for b in bad:
    print("#", b)
sys.exit(1 if bad else 0)
EOF

check "h5dump -H reads the file" sh -c "h5dump -H '$SCRATCH/sample.h5' >'$SCRATCH/dump.txt' 2>&1"

check "loss curve reads back with the documented h5py example" $PY - "$SCRATCH/sample.h5" <<'EOF'
import sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    step = f["/metrics/step"][:]
    loss = f["/metrics/loss"][:]
    names = list(f["/model"].attrs["modality_names"])
    by_mod = f["/metrics/loss_by_modality"][:]
assert list(step) == [1, 2, 3, 4, 5, 6], step
assert np.array_equal(loss, 10.0 / (step + 1)), loss
assert names == ["text", "image"], names
# modality 1 has no tokens at steps divisible by 3 (NaN), modality 0 always has
assert np.isnan(by_mod[2, 1]) and np.isnan(by_mod[5, 1]) and not np.isnan(by_mod[:, 0]).any()
EOF

# A live writer: flushes rows 1..20, then appends unflushed rows until it is killed.
"$WRITER" write "$SCRATCH/killed.h5" 20 >"$SCRATCH/writer.out" 2>&1 &
wpid=$!
i=0
while ! grep -q "flushed 20" "$SCRATCH/writer.out" 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
check "writer flushed 20 rows" grep -q "flushed 20" "$SCRATCH/writer.out"

check "a live SWMR reader sees every flushed row" $PY - "$SCRATCH/killed.h5" <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r", libver="latest", swmr=True)
d = f["/metrics/step"]
d.refresh()
assert d.shape[0] >= 20 and list(d[:20]) == list(range(1, 21)), d[:]
EOF

sleep 0.5
kill -KILL $wpid 2>/dev/null
wait $wpid 2>/dev/null

check "after SIGKILL h5py reads every flushed row" $PY - "$SCRATCH/killed.h5" <<'EOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r", libver="latest", swmr=True)
n = min(f["/metrics/" + k].shape[0] for k in f["/metrics"])
assert n >= 20, n
step = f["/metrics/step"][:n]
assert list(step[:20]) == list(range(1, 21)), step
assert np.array_equal(f["/metrics/loss"][:20], 10.0 / (step[:20] + 1))
assert f["/ranks/step_time"].shape[0] >= 20
ev = f["/eval/step"][:]
assert list(ev[:5]) == [4, 8, 12, 16, 20], ev
EOF

# Resume from step 12: rows 13.. are dropped, 8 more appended, flags cleared.
check "reopen after SIGKILL, resuming at step 12" "$WRITER" reopen "$SCRATCH/killed.h5" 12 8

check "resumed file: no gap, no duplicate, plain open works" $PY - "$SCRATCH/killed.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    for k in f["/metrics"]:
        assert f["/metrics/" + k].shape[0] == 20, (k, f["/metrics/" + k].shape)
    for k in f["/ranks"]:
        assert f["/ranks/" + k].shape[0] == 20, k
    step = f["/metrics/step"][:]
    assert list(step) == list(range(1, 21)), step
    assert np.array_equal(f["/metrics/loss"][:], 10.0 / (step + 1))
    assert list(f["/eval/step"][:]) == [4, 8, 12, 16, 20], f["/eval/step"][:]
EOF

check "h5dump -H reads the resumed file" sh -c "h5dump -H '$SCRATCH/killed.h5' >/dev/null 2>&1"
