#!/bin/sh
# OPT triples from a file (model.kind = opt, data.source = file; issue 16): `data gen`
# of an opt config writes the scenes; training from that file gives the synthetic
# run's record bit for bit (losses, per-task losses, held-out evaluation with
# retrieval), on one rank and at dp = 2; a malformed file (wrong shape, non-finite
# float, class out of range, rows out of order, missing dataset, other sizes) stops
# with one line naming the file, the dataset and the offset, exit 2, nothing written;
# a run reading a scene the file lacks stops with exit 2 naming it.
. tests/lib.sh

base_ini run.seed=7 model.kind=opt data.modalities=text,image,speech data.mix=1,1,1 \
    train.global_batch=8 train.steps=10 log.eval_every=5 log.eval_tokens=16 log.retrieval_pool=8
F="$SCRATCH/opt.h5"
check "data gen of an opt config writes an OPT triple file" \
    sh -c "'$MOTSCALE' data gen '$SCRATCH/base.ini' -o '$F' >'$SCRATCH/gen.out' 2>&1"
check "... data inspect says what it holds" \
    sh -c "'$MOTSCALE' data inspect '$F' >'$SCRATCH/inspect.out' 2>&1 && grep -q 'OPT triples' '$SCRATCH/inspect.out'"
for np in 1 2; do
    run "syn$np" $np && run "file$np" $np data.source=file data.path="$F" &&
        check "np $np: training from the file = the synthetic run, bit for bit (every /metrics and /eval column)" \
            runcmp same "$SCRATCH/runs/syn$np/run.h5" "$SCRATCH/runs/file$np/run.h5"
done
check "... and the task losses and retrieval recalls too" $PY - "$SCRATCH/runs" <<'PYEOF'
import sys
import h5py
a, b = (h5py.File("%s/%s/run.h5" % (sys.argv[1], n), "r") for n in ("syn1", "file1"))
keys = [k for k in ("/metrics/loss", "/metrics/task_loss", "/eval/loss_by_modality") if k in a]
keys += ["/eval/" + k for k in a["/eval"] if "retrieval" in k or "task" in k]
bad = [k for k in keys if a[k][()].tobytes() != b[k][()].tobytes()]
print("# compared %s; differing: %s" % (", ".join(keys), bad or "none"))
sys.exit(1 if bad or a["/eval/step"].shape[0] != 2 or len(keys) < 4 else 0)
PYEOF

$PY - "$SCRATCH" <<'PYEOF'
import shutil, sys
import h5py, numpy as np
d = sys.argv[1]
def edit(name, fn):
    shutil.copy(d + "/opt.h5", "%s/bad-%s.h5" % (d, name))
    with h5py.File("%s/bad-%s.h5" % (d, name), "r+") as f:
        fn(f)
def put(f, k, fn):
    x = f[k][...]
    fn(x)
    del f[k]
    f[k] = x
def reshape(f):
    x = f["/opt_region"][...]
    del f["/opt_region"]
    f["/opt_region"] = x[:, :-1]
edit("shape", reshape)
edit("nan", lambda f: put(f, "/opt_audio", lambda x: x.__setitem__((3, 4), np.nan)))
edit("class", lambda f: put(f, "/opt_class", lambda x: x.__setitem__((2, 1), 99)))
edit("order", lambda f: put(f, "/opt_index", lambda x: x.__setitem__(1, x[0])))
edit("missing", lambda f: f.__delitem__("/opt_codes"))
edit("moved", lambda f: put(f, "/opt_region", lambda x: x.__iadd__(0.5)))
PYEOF
for bad in "shape:/opt_region" "nan:/opt_audio\[3, 4\]" "class:/opt_class\[2, 1\]" "order:/opt_index\[1\]" \
    "missing:/opt_codes: missing"; do
    name=${bad%%:*}
    msg=${bad#*:}
    expect_status 2 "OPT file with a bad dataset ($name): exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad \
        data.source=file data.path="$SCRATCH/bad-$name.h5"
    check "... one line naming the file and $msg" \
        sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q 'bad-$name.h5: $msg' '$SCRATCH/last.out'"
done
run moved 1 data.source=file data.path="$SCRATCH/bad-moved.h5" &&
    check "a file with moved region features (finite, in range) trains, to other losses: the run reads the file" \
        sh -c "! $PY tests/runcmp.py same '$SCRATCH/runs/syn1/run.h5' '$SCRATCH/runs/moved/run.h5' >/dev/null 2>&1"
expect_status 2 "an OPT file of other sizes (data.opt_regions): exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" \
    run.name=bad data.source=file data.path="$F" data.opt_regions=4
check "... one line naming the attribute" \
    sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q 'opt_regions' '$SCRATCH/last.out'"
check "... and nothing written" sh -c "[ ! -e '$SCRATCH/runs/bad' ]"
expect_status 2 "training past the samples the file was written for: exit 2 when a scene is missing" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=long data.source=file data.path="$F" train.steps=40 log.eval_every=0
check "... naming /opt_index and the sample" grep -q "opt.h5: /opt_index: no row for sample [0-9]* of the train split" \
    "$SCRATCH/last.out"
echo "1..$TAPN"
