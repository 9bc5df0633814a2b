"""Checks a run file against docs/run-record.md: every object of the documented table
of section "Objects" (rows whose first cell is a `/...` path: path, kind, dtype,
shape) exists with its dtype and shape and reads back, and nothing undocumented is in
the file. With `checkpoint`, checks a checkpoint against the table of section
"Checkpoints" instead, and its fingerprint against the documented formula computed
from RUN.h5's model.

usage: /usr/bin/python3 tests/check_schema.py DOC RUN.h5 required|optional
       /usr/bin/python3 tests/check_schema.py DOC CKPT.h5 checkpoint RUN.h5
(required: the optional attributes must be there too). Exit 0 when all holds."""
import re, sys
import h5py, numpy as np


def table(doc, section):
    rows, inside = [], False
    for line in open(doc):
        if line.startswith("## "):
            inside = line.strip() == "## " + section
        m = re.match(r"^\|\s*`(/[^`]*)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|", line)
        if m and inside:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip(), m.group(4).strip()))
    return rows


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def checksum(x):
    """docs/run-record.md: sum_i mix(i * 0x9e3779b97f4a7c15 xor bits(x_i)) mod 2^64."""
    with np.errstate(over="ignore"):
        i = np.arange(x.size, dtype=np.uint64)
        z = (i * np.uint64(0x9e3779b97f4a7c15)) ^ x.astype("<f4").reshape(-1).view(np.uint32).astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
        return int(np.sum(z, dtype=np.uint64))


def check_checkpoint(doc, path, run_path):
    rows = table(doc, "Checkpoints")
    assert len(rows) >= 10, "documented checkpoint objects not found in %s" % doc
    bad = []
    f, r = h5py.File(path, "r"), h5py.File(run_path, "r")
    attrs = {p[2:]: d for p, k, d, _ in rows if p.startswith("/@")}
    groups = [p.split("/")[1] for p, k, d, _ in rows if p.endswith("/NAME")]
    if set(f.attrs) != set(attrs):
        bad.append("root attributes %s, documented %s" % (sorted(f.attrs), sorted(attrs)))
    for a, d in attrs.items():
        if a in f.attrs and f.attrs.get_id(a).dtype != np.dtype(d).newbyteorder("<"):
            bad.append("/@%s: dtype %s, documented %s" % (a, f.attrs.get_id(a).dtype, d))
    if sorted(f.keys()) != sorted(groups):
        bad.append("groups %s, documented %s" % (sorted(f.keys()), groups))
    names = None
    for g in groups:
        if g not in f:
            continue
        have = sorted(f[g].keys())
        names = names or have
        if have != names:
            bad.append("/%s holds other tensors than /%s" % (g, groups[0]))
        for n in have:
            d = f[g][n]
            if d.dtype != np.dtype("<f4") or d.ndim != 2:
                bad.append("/%s/%s: %s %s, documented float32 (rows, cols)" % (g, n, d.dtype, d.shape))
            elif "checksum" not in d.attrs or int(d.attrs["checksum"]) != checksum(d[...]):
                bad.append("/%s/%s: checksum %s, the documented formula gives %d" % (
                    g, n, d.attrs.get("checksum"), checksum(d[...])))
    # the fingerprint from the model, as documented
    m = r["/model"].attrs
    cfg = dict(re.findall(r"^(\w+) = (.*)$", text(r.attrs["config"]), re.M))
    sizes = {"text": int(cfg["vocab_text"]), "image": int(cfg["vocab_image"]), "speech": int(cfg["vocab_speech"])}
    s = "d%d L%d H%d f%d towers%d norm%d qk%d V%d" % (
        m["d_model"], m["n_layers"], m["n_heads"], m["d_ff"], m["n_towers"],
        {"swin": 0, "pre": 1}[cfg["norm"]], cfg["qk_norm"] == "true", m["vocab_size"])
    lo = 0
    for name, tower in zip(m["modality_names"], m["tower_of"]):
        name = text(name)
        s += " %s[%d,%d)->%d" % (name, lo, lo + sizes[name], tower)
        lo += sizes[name]
    h = 1469598103934665603  # the documented offset basis
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) % 2 ** 64
    want = h - 2 ** 64 if h >= 2 ** 63 else h
    if int(f.attrs["fingerprint"]) != want:
        bad.append("/@fingerprint %d, the documented formula gives %d for %r" % (
            int(f.attrs["fingerprint"]), want, s))
    print("# %s: %d attributes, %d tensors in each of %s; fingerprint of %r" % (
        path.split("/")[-1], len(f.attrs), len(names or []), ", ".join(groups), s))
    for b in bad:
        print("#", b)
    return 1 if bad else 0


def main():
    if len(sys.argv) == 5 and sys.argv[3] == "checkpoint":
        sys.exit(check_checkpoint(sys.argv[1], sys.argv[2], sys.argv[4]))
    doc, path, need_optional = sys.argv[1], sys.argv[2], sys.argv[3] == "required"
    rows = table(doc, "Objects")
    assert len(rows) > 50, "documented objects not found in %s" % doc
    NUM = {"int32": np.int32, "int64": np.int64, "float64": np.float64}
    bad = []
    f = h5py.File(path, "r")
    M = len(f["/model"].attrs["modality_names"])
    W = int(f.attrs["world_size"])
    R = f["/metrics/step"].shape[0]
    E = f["/eval/step"].shape[0]
    S = f["/restarts/step"].shape[0]
    # a model with experts has the "with experts" objects; any other has none of them
    experts = "moe_experts" in f["/model"].attrs
    K = int(f["/model"].attrs["moe_layers"]) if experts else 0
    NE = int(f["/model"].attrs["moe_experts"]) if experts else 0
    # continuous images have the "with images" objects; token images none of them
    images = text(f["/model"].attrs.get("image_objective", "tokens")) == "diffusion"
    G = len(f["/model"].attrs["diffusion_eval_t"]) if images else 0
    # a run that decodes (data.source = aligned, tasks) has the "with decoding" objects
    cfg = dict(re.findall(r"^(\w+) = (.*)$", text(f.attrs["config"]), re.M))
    decoding = cfg.get("source") == "aligned" and cfg.get("aligned_stream") == "tasks" and \
        int(cfg.get("eval_every", "0")) > 0
    P = int(cfg["aligned_heldout"]) if decoding else 0
    # an OPT model (kind opt) has the "with OPT" objects; any other has none of them
    opt = text(f["/model"].attrs["kind"]) == "opt"

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
        if "with experts" in kind or "with images" in kind or "with decoding" in kind or "with OPT" in kind:
            present = ("@" in p and p.split("@")[1] in f[p.split("@")[0]].attrs) or (
                "@" not in p and p in f)
            cond, what = (experts, "a model without experts") if "with experts" in kind else \
                (images, "a model without continuous images") if "with images" in kind else \
                (opt, "a model not of kind opt") if "with OPT" in kind else \
                (decoding, "a run that does not decode")
            if not cond:
                if present:
                    bad.append("%s: present in %s" % (p, what))
                continue
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
            want = () if shape == "scalar" else (K,) if shape == "(K,)" else (G,) if shape == "(G,)" else (M,)
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
                "(rows, W)": (R, W), "(restarts,)": (S,), "(rows, K x E x M)": (R, K * NE * M),
                "(eval_rows, G)": (E, G), "(eval_rows, 3)": (E, 3), "(eval_rows, P)": (E, P),
                "(rows, 8)": (R, 8), "(eval_rows, 8)": (E, 8), "(eval_rows, 15)": (E, 15)}.get(shape)
        if d.shape != want or d.shape[0] == 0:
            bad.append("%s: shape %s, documented %s = %s" % (p, d.shape, shape, want))
        if d.maxshape[0] is not None or d.chunks is None:
            bad.append("%s: not an extendible chunked dataset" % p)
        v = d[...]  # read every row
        if dtype == "string" and not all(isinstance(x, (str, bytes)) for x in v):
            bad.append("%s: not strings" % p)
        # NaN is documented for the per-modality and per-length columns, the sampling
        # check (final evaluation only), a caption loss of windows without captions, and
        # an OPT task not computed (weight 0, no target in the batch, a regression's accuracy)
        nan_ok = "by_modality" in p or "by_length" in p or "/eval/sample_" in p or p == "/eval/caption_loss" or \
            "task_" in p
        if v.dtype.kind == "f" and not nan_ok and not np.all(np.isfinite(v)):
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


if __name__ == "__main__":
    main()
