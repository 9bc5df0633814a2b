#!/bin/sh
# `motscale data`: gen, inspect and import-text, their --help, the token file read
# back independently with h5py, bad input refused with exit 2, and (when `train`
# is built) identical losses from a synthetic run and the same stream from a file.
. tests/lib.sh

cat >"$SCRATCH/d.ini" <<'INI'
[run]
seed = 3
[model]
seq_len = 32
[data]
modalities = text,image,speech
mix = 1,2,1
[train]
steps = 6
global_batch = 4
[log]
eval_tokens = 128
INI

for v in "" gen inspect import-text; do
    expect_status 0 "data $v --help" "$MOTSCALE" data $v --help
done

expect_status 0 "data gen writes a token file" "$MOTSCALE" data gen "$SCRATCH/d.ini" -o "$SCRATCH/d.h5"
expect_status 0 "data inspect accepts it" "$MOTSCALE" data inspect "$SCRATCH/d.h5"
check "inspect prints a row per modality with an entropy" \
    sh -c "grep -Eq '^text +\[0, 96\) +[0-9]+' '$SCRATCH/last.out' && grep -q '^image ' '$SCRATCH/last.out' && grep -q '^speech ' '$SCRATCH/last.out'"

# The format as docs/data.md states it, read without motscale: 24 train windows
# (steps x global_batch) and ceil(128 / 32) = 4 held-out ones of 33 tokens, spans
# tiling the stream, every id in the range of its span's modality.
check "h5py reads the documented format" $PY - "$SCRATCH/d.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:]; s = f["spans"][:]
a = f.attrs
assert t.dtype == np.uint16 and t.ndim == 1 and t.size == (24 + 4) * 33, t.shape
assert int(a["heldout_start"]) == 24 * 33 and int(a["window"]) == 33
mods = a["modalities"]; mods = mods.decode() if isinstance(mods, bytes) else mods
assert mods == "text,image,speech", mods
lo, hi = list(a["vocab_lo"]), list(a["vocab_hi"])
assert lo == [0, 96, 160] and hi == [96, 160, 192], (lo, hi)
assert s.shape[1] == 3 and s[0, 0] == 0 and (s[1:, 0] == s[:-1, 0] + s[:-1, 1]).all()
assert s[-1, 0] + s[-1, 1] == t.size
for start, n, m in s:
    x = t[start:start + n]
    assert ((x >= lo[m]) & (x < hi[m])).all()
PY

printf 'h\303\251llo, world\n\nsecond paragraph\n' >"$SCRATCH/a.txt"
printf 'another document\n' >"$SCRATCH/b.txt"
expect_status 0 "import-text writes byte tokens" \
    "$MOTSCALE" data import-text "$SCRATCH/a.txt" "$SCRATCH/b.txt" -o "$SCRATCH/t.h5" --heldout-frac 0.25
check "import-text: <doc> then 1 + byte, one text range of 257 ids" $PY - "$SCRATCH/t.h5" "$SCRATCH/a.txt" "$SCRATCH/b.txt" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:]
want = []
for p in sys.argv[2:]:
    want += [0] + [1 + b for b in open(p, "rb").read()]
assert list(t) == want, (list(t)[:10], want[:10])
assert list(f.attrs["vocab_lo"]) == [0] and list(f.attrs["vocab_hi"]) == [257]
assert int(f.attrs["heldout_start"]) == len(want) - int(len(want) * 0.25)
PY
expect_status 0 "inspect accepts the imported file" "$MOTSCALE" data inspect "$SCRATCH/t.h5"

# bad input: one line, exit 2
printf 'bad \377 byte\n' >"$SCRATCH/bad.txt"
expect_status 2 "import-text refuses invalid UTF-8" "$MOTSCALE" data import-text "$SCRATCH/bad.txt" -o "$SCRATCH/x.h5"
check "... naming the byte offset" grep -q 'byte offset 4' "$SCRATCH/last.out"
expect_status 2 "import-text: missing input" "$MOTSCALE" data import-text "$SCRATCH/none.txt" -o "$SCRATCH/x.h5"
expect_status 2 "gen: bad override" "$MOTSCALE" data gen "$SCRATCH/d.ini" data.mix=1,x,1 -o "$SCRATCH/x.h5"
expect_status 2 "gen: source = file is not a generator" \
    "$MOTSCALE" data gen "$SCRATCH/d.ini" data.source=file data.path=/nonexistent -o "$SCRATCH/x.h5"
expect_status 2 "gen: no output" "$MOTSCALE" data gen "$SCRATCH/d.ini"
expect_status 2 "inspect: missing file" "$MOTSCALE" data inspect "$SCRATCH/none.h5"
expect_status 2 "inspect: not HDF5" "$MOTSCALE" data inspect "$SCRATCH/a.txt"
expect_status 2 "unknown data verb" "$MOTSCALE" data frobnicate
$PY - "$SCRATCH/d.h5" "$SCRATCH/oov.h5" <<'PY'
import sys, shutil, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f["tokens"][40] = 999
PY
expect_status 2 "inspect: id out of the vocabulary" "$MOTSCALE" data inspect "$SCRATCH/oov.h5"
check "... naming dataset, offset and value" grep -q '/tokens\[40\]: id 999' "$SCRATCH/last.out"
check "... in one line" test "$(wc -l <"$SCRATCH/last.out")" -eq 1

# Synthetic vs the same stream from the file: identical training and held-out losses.
if "$MOTSCALE" train --help >/dev/null 2>&1; then
    common="run.out_dir=$SCRATCH/results train.steps=6 train.global_batch=4 log.every=1 log.eval_every=3 log.quiet=true"
    "$MOTSCALE" train "$SCRATCH/d.ini" $common run.name=syn >"$SCRATCH/syn.log" 2>&1
    rs=$?
    "$MOTSCALE" train "$SCRATCH/d.ini" $common run.name=file data.source=file "data.path=$SCRATCH/d.h5" \
        >"$SCRATCH/file.log" 2>&1
    rf=$?
    check "train on synthetic and on the gen file both succeed" test "$rs" -eq 0 -a "$rf" -eq 0
    check "identical losses, train and held-out" $PY - "$SCRATCH/results" <<'PY'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1] + "/syn/run.h5", "r"); b = h5py.File(sys.argv[1] + "/file/run.h5", "r")
for k in ["metrics/loss", "metrics/loss_by_modality", "eval/loss"]:
    x, y = a[k][:], b[k][:]
    assert x.size > 0 and np.array_equal(x, y), (k, x, y)
PY
else
    ok "train on synthetic vs file # SKIP motscale train is not built"
fi
