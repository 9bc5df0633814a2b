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

# Every object of the docs table, with its dtype and shape, and nothing undocumented
# (tests/check_schema.py, shared with runfile.sh).
check "every documented object has its documented dtype, shape and values" \
    $PY tests/check_schema.py "$DOC" "$SCRATCH/sample.h5" required

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
