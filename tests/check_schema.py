"""Checks a run file against docs/run-record.md: every object of the documented table
(rows whose first cell is a `/...` path: path, kind, dtype, shape) exists with its
dtype and shape and reads back, and nothing undocumented is in the file.

usage: /usr/bin/python3 tests/check_schema.py DOC RUN.h5 required|optional
(required: the optional attributes must be there too). Exit 0 when all holds."""
import re, sys
import h5py, numpy as np

doc, path, need_optional = sys.argv[1], sys.argv[2], sys.argv[3] == "required"
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
R = f["/metrics/step"].shape[0]
E = f["/eval/step"].shape[0]

def dtype_ok(dt, want):
    base = want.split("[")[0]
    if base == "string":
        info = h5py.check_string_dtype(dt)
        return info is not None and info.length is None and info.encoding == "utf-8"
    return dt == np.dtype(NUM[base]).newbyteorder("<")

documented = set()
n_attr = n_ds = 0
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
            if "optional" not in kind or need_optional:
                bad.append("%s: attribute missing" % p)
            continue
        a = holder.attrs.get_id(name)
        if not dtype_ok(a.dtype, dtype):
            bad.append("%s: dtype %s, documented %s" % (p, a.dtype, dtype))
        want = () if shape == "scalar" else (M,)
        if a.shape != want:
            bad.append("%s: shape %s, documented %s" % (p, a.shape, shape))
        v = holder.attrs[name]  # read the value
        if dtype == "string" and not isinstance(v, str):
            bad.append("%s: h5py gives %r, not str" % (p, type(v)))
        n_attr += 1
        continue
    d = f.get(p)
    if not isinstance(d, h5py.Dataset):
        bad.append("%s: dataset missing" % p)
        continue
    if not dtype_ok(d.dtype, dtype):
        bad.append("%s: dtype %s, documented %s" % (p, d.dtype, dtype))
    want = {"(rows,)": (R,), "(eval_rows,)": (E,), "(rows, M)": (R, M), "(eval_rows, M)": (E, M),
            "(rows, W)": (R, W)}.get(shape)
    if d.shape != want or d.shape[0] == 0:
        bad.append("%s: shape %s, documented %s = %s" % (p, d.shape, shape, want))
    if d.maxshape[0] is not None or d.chunks is None:
        bad.append("%s: not an extendible chunked dataset" % p)
    v = d[...]  # read every row
    if v.dtype.kind == "f" and "by_modality" not in p and not np.all(np.isfinite(v)):
        bad.append("%s: non-finite values %s" % (p, v))
    n_ds += 1

def walk(name, obj):
    p = "/" + name if name else "/"
    if p not in documented:
        bad.append("%s: in the file but not documented" % p)
    for a in obj.attrs:
        q = "/@" + a if p == "/" else p + "@" + a
        if q not in documented:
            bad.append("%s: in the file but not documented" % q)

walk("", f)
f.visititems(walk)
print("# %s: read %d documented datasets and %d attributes (%d rows, %d eval rows, W %d)"
      % (path.split("/")[-2], n_ds, n_attr, R, E, W))
for b in bad:
    print("#", b)
sys.exit(1 if bad else 0)
