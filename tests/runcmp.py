"""The end-to-end tests' one helper for reading and comparing run records (run.h5,
docs/run-record.md). Run with Debian's /usr/bin/python3 (h5py). Exit 0 when what is
asked holds, 1 (with "# ..." lines saying why) when not, 2 on bad usage.

  runcmp.py columns RUN.h5
      every number column a change must not move (loss, loss by modality, gradient
      norm, lr, tokens, FLOPs, held-out loss), one line each, values as exact hex
  runcmp.py same REF CAND [--from S] [--to E]
      CAND's rows with step in (S, E] equal REF's bit for bit: loss, loss by
      modality, gradient norm, tokens by modality
  runcmp.py close REF CAND --tol T [--from S] [--to E]
      the same rows: equal steps and token counts, the same modalities without
      tokens, and loss and loss by modality within relative T of REF's
  runcmp.py rows RUN.h5           the number of logged rows
  runcmp.py attr RUN.h5 NAME      a root attribute (or /model@NAME) as text
"""
import sys

import h5py
import numpy as np

COLUMNS = ["metrics/step", "metrics/loss", "metrics/loss_by_modality", "metrics/grad_norm",
           "metrics/lr", "metrics/tokens_by_modality", "metrics/flops", "eval/step",
           "eval/loss", "eval/loss_by_modality"]
SAME = ("loss", "loss_by_modality", "grad_norm", "tokens_by_modality")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read(path, lo, hi):
    with h5py.File(path, "r") as f:
        step = f["/metrics/step"][:]
        keep = (step > lo) & (step <= hi)
        d = {k: f["/metrics/" + k][:][keep] for k in ("step", "tokens") + SAME}
        d["name"] = path.split("/")[-2]
        d["tp"], d["dp"] = int(f.attrs["tp"]), int(f.attrs["dp"])
        d["backend"] = text(f.attrs["tp_backend"])
    return d


def rel(a, b):
    return np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))


def compare(argv, tol):
    lo, hi = 0, np.iinfo(np.int64).max
    args = list(argv)
    while "--from" in args or "--to" in args:
        for flag in ("--from", "--to"):
            if flag in args:
                i = args.index(flag)
                v = int(args[i + 1])
                del args[i:i + 2]
                lo, hi = (v, hi) if flag == "--from" else (lo, v)
    ref, cand = read(args[0], lo, hi), read(args[1], lo, hi)
    bad = []
    if not len(cand["step"]) or not np.array_equal(ref["step"], cand["step"]):
        bad.append("%s: steps %s, %s has %s" % (cand["name"], list(cand["step"]), ref["name"],
                                               list(ref["step"])))
    elif not np.array_equal(ref["tokens"], cand["tokens"]):
        bad.append("%s: token counts differ from %s" % (cand["name"], ref["name"]))
    elif tol is None:
        for k in SAME:
            if ref[k].tobytes() != cand[k].tobytes():
                bad.append("%s: %s differs from %s (max |diff| %.3g)" % (
                    cand["name"], k, ref["name"], np.nanmax(np.abs(cand[k] - ref[k]))))
        if not bad:
            print("# %s = %s bit for bit over %d rows" % (cand["name"], ref["name"], len(ref["step"])))
    else:
        r, rm = rel(cand["loss"], ref["loss"]), rel(cand["loss_by_modality"], ref["loss_by_modality"])
        worst = max(np.max(r), np.nanmax(rm))
        print("# %s (%s, tp %d, dp %d) vs %s (%s, tp %d, dp %d), steps %d..%d: max relative "
              "deviation loss %.2e, loss by modality %.2e (tolerance %.0e)" % (
                  cand["name"], cand["backend"], cand["tp"], cand["dp"], ref["name"], ref["backend"],
                  ref["tp"], ref["dp"], ref["step"][0], ref["step"][-1], np.max(r), np.nanmax(rm), tol))
        if not worst <= tol:
            i = int(np.argmax(r))
            bad.append("%s: step %d loss %.9g vs %.9g (rel %.2e > %.0e)" % (
                cand["name"], cand["step"][i], cand["loss"][i], ref["loss"][i], worst, tol))
        if not np.array_equal(np.isnan(cand["loss_by_modality"]), np.isnan(ref["loss_by_modality"])):
            bad.append("%s: modalities without tokens differ from %s" % (cand["name"], ref["name"]))
    for x in bad:
        print("#", x)
    return 1 if bad else 0


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "columns":
        with h5py.File(rest[0], "r") as f:
            for name in COLUMNS:
                print(name, " ".join(float(v).hex() for v in f[name][()].reshape(-1)))
        return 0
    if cmd == "same" and len(rest) >= 2:
        return compare(rest, None)
    if cmd == "close" and "--tol" in rest:
        i = rest.index("--tol")
        tol = float(rest[i + 1])
        return compare(rest[:i] + rest[i + 2:], tol)
    if cmd == "rows":
        with h5py.File(rest[0], "r", libver="latest", swmr=True) as f:
            print(f["/metrics/step"].shape[0])
        return 0
    if cmd == "attr" and len(rest) == 2:
        with h5py.File(rest[0], "r") as f:
            a = f.attrs if rest[1] in f.attrs else f["/model"].attrs
            print(text(a[rest[1]]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
