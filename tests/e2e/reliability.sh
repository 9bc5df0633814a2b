#!/bin/sh
# What a hostile user tried (issue "Reliability"), item by item: each case must end
# with exit 0, 1 or 2 as stated, one line, nothing half-written, never a hang (every
# run under timeout). The full disk (items 1 and 13) is tests/e2e/faults.sh.
. tests/lib.sh
T="timeout 60"
base_ini train.steps=30 train.checkpoint_every=10 log.every=5

# one_line STATUS "description" command...: the exit status and exactly one line of
# output, which names PATTERN (the next argument after the description)
one_line() {
    want=$1 desc=$2 pat=$3
    shift 3
    $T "$@" </dev/null >"$SCRATCH/last.out" 2>&1
    got=$?
    n=$(grep -c . "$SCRATCH/last.out")
    if [ "$got" -eq "$want" ] && [ "$n" -eq 1 ] && grep -qF -- "$pat" "$SCRATCH/last.out"; then ok "$desc"; else
        not_ok "$desc (exit $got, $n lines, want $want and one line with '$pat')"
        sed 's/^/# /' "$SCRATCH/last.out" | head -4
    fi
}

# ---- 2. one writer per run directory ------------------------------------------------
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=busy train.steps=100000 log.quiet=true \
    </dev/null >"$SCRATCH/busy.out" 2>&1 &
busy=$!
for i in $(seq 100); do [ -f "$SCRATCH/runs/busy/run.h5" ] && break; sleep 0.1; done
one_line 2 "2: a second start on a directory being written is refused, naming the holder" \
    "is being written by $(hostname) pid" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=busy train.resume=auto
kill -TERM $busy
wait $busy
check "2: the first run went on undisturbed and checkpointed on the signal (exit 75)" [ $? -eq 75 ]

# unfinished NAME: a 10-step run left as a preempted one would be (checkpoint at 10)
unfinished() {
    $T "$MOTSCALE" train "$SCRATCH/base.ini" run.name="$1" train.steps=10 log.quiet=true >/dev/null 2>&1
    echo preempted >"$SCRATCH/runs/$1/status"
}

# ---- 3. a resume that changes the trajectory --------------------------------------
unfinished r3
one_line 2 "3: resuming with another train.lr is refused, naming the key and both values" \
    "train.lr 0.0030000000000000001 -> 0.001" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r3 train.steps=20 \
    train.resume=auto train.lr=1e-3
check "3: ... and nothing was appended (10 rows)" [ "$(runcmp rows "$SCRATCH/runs/r3/run.h5")" = 2 ]
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r3 train.steps=20 train.resume=auto log.every=2 \
    log.quiet=true >"$SCRATCH/r3.out" 2>&1
check "3: extending train.steps and changing log.every resume (exit 0)" [ $? -eq 0 ]
check "3: /restarts records both starts, at steps 0 and 10, with their configurations" $PY -c "
import h5py, sys
f = h5py.File('$SCRATCH/runs/r3/run.h5', 'r')
s, c = list(f['/restarts/step'][:]), [x.decode() for x in f['/restarts/config'][:]]
sys.exit(0 if s == [0, 10] and 'steps = 10' in c[0] and 'steps = 20' in c[1] and
         'steps = 20' in f.attrs['config'] else 1)"

# ... and jobs/local: a completed point asked for again with a key its run-name
# template does not show is refused, naming the key (it used to print "complete,
# skipped" and exit 0)
cat >"$SCRATCH/exp3.ini" <<EOF
[run]
name = p-{model.kind}
out_dir = $SCRATCH/exp3
[model]
d_model = 32
n_layers = 1
n_heads = 4
d_ff = 64
seq_len = 16
[train]
steps = 4
global_batch = 4
warmup = 1
[log]
eval_every = 0
quiet = true
peak_flops = 1e9
[sweep]
model.kind = dense
EOF
MOTSCALE_NP=1 $T jobs/local "$SCRATCH/exp3.ini" >"$SCRATCH/exp3.out" 2>&1
check "3: jobs/local ran a one-point experiment (exit 0)" [ $? -eq 0 ]
MOTSCALE_NP=1 $T jobs/local "$SCRATCH/exp3.ini" >"$SCRATCH/exp3b.out" 2>&1
check "3: ... asked again unchanged: complete, skipped (exit 0)" sh -c "[ $? -eq 0 ] && grep -q 'is complete, skipped' '$SCRATCH/exp3b.out'"
MOTSCALE_NP=1 $T jobs/local "$SCRATCH/exp3.ini" run.seed=2 >"$SCRATCH/exp3c.out" 2>&1
rc=$?
check "3: ... asked with run.seed=2 (not in the template): exit 2 naming run.seed and both values" \
    sh -c "[ $rc -eq 2 ] && grep -qF \"run.seed ('1' -> '2')\" '$SCRATCH/exp3c.out'"

# ---- 4. an empty run.out_dir --------------------------------------------------------
one_line 2 "4: an empty run.out_dir is refused" "run.out_dir: must not be empty" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.out_dir=

# ---- 5. a live SWMR reader does not block a resume -----------------------------------
unfinished r5
$PY -c "
import h5py, time
f = h5py.File('$SCRATCH/runs/r5/run.h5', 'r', libver='latest', swmr=True)
time.sleep(8)" &
reader=$!
sleep 1
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r5 train.steps=20 train.resume=auto log.quiet=true \
    >"$SCRATCH/r5.out" 2>&1
check "5: resume=auto with an open SWMR reader (HDF5's default locking) completes" [ $? -eq 0 ]
kill $reader 2>/dev/null
wait $reader 2>/dev/null

# ---- 6. a corrupted checkpoint is never resumed from -------------------------------
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r6 train.steps=20 log.quiet=true >/dev/null 2>&1
echo preempted >"$SCRATCH/runs/r6/status"
cp -r "$SCRATCH/runs/r6" "$SCRATCH/runs/r6nan"
$PY - "$SCRATCH/runs/r6/checkpoints/ckpt-000000020.h5" "$SCRATCH/runs/r6nan/checkpoints/ckpt-000000020.h5" <<'EOF'
import sys, h5py, numpy as np
# 64 flipped bytes inside one tensor's values (its checksum now disagrees)
with h5py.File(sys.argv[1], "r") as f:
    off = f["/params/tower0.layer0.ffn.w1"].id.get_offset()
with open(sys.argv[1], "r+b") as f:
    f.seek(off + 100)
    b = bytearray(f.read(64))
    f.seek(off + 100)
    f.write(bytes(x ^ 0x5A for x in b))
# a NaN written through HDF5 with a matching checksum: only the finiteness check sees it
sys.path.insert(0, "tests")
from check_schema import checksum  # docs/run-record.md's formula, written independently
with h5py.File(sys.argv[2], "r+") as f:
    d = f["/adam_v/head"]
    x = d[...]
    x[3, 5] = np.nan
    d[...] = x
    d.attrs["checksum"] = np.uint64(checksum(x))
EOF
for r in r6 r6nan; do
    $T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=$r train.steps=30 train.resume=auto log.quiet=true \
        >"$SCRATCH/$r.out" 2>&1
    rc=$?
    check "6 ($r): the damaged newest checkpoint is skipped with one warning, the older one resumed" sh -c \
        "[ $rc -eq 0 ] && [ \$(grep -c 'skipping checkpoint' '$SCRATCH/$r.out') -eq 1 ] &&
         grep -q 'resumed from the older checkpoint .*ckpt-000000010.h5' '$SCRATCH/$r.out'"
done
check "6: the warnings name the checksum and the non-finite value" sh -c \
    "grep -q 'ffn.w1: checksum' '$SCRATCH/r6.out' && grep -q 'adam_v/head: element .* nan' '$SCRATCH/r6nan.out'"

# ---- 7. numeric keys have bounds; products are checked ---------------------------
for kv in data.text_span=2000000000 log.eval_tokens=9223372036854775807 data.vocab_text=2000000000 \
    model.d_model=1000000 model.seq_len=100000000 train.global_batch=100000000 model.n_layers=100000; do
    one_line 2 "7: $kv is refused before anything is allocated" "${kv%%=*}" \
        "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r7 "$kv"
done
one_line 2 "7: a model too large for this machine is refused, naming the keys" "model.d_model = 8192" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r7 model.d_model=8192 model.n_heads=64 model.d_ff=32768 \
    model.n_layers=64
check "7: ... and nothing was written" [ ! -e "$SCRATCH/runs/r7" ]
$T "$MOTSCALE" flops "$SCRATCH/base.ini" model.d_model=65536 model.n_heads=64 model.n_layers=1024 \
    >"$SCRATCH/f7.out" 2>&1
check "7: motscale flops refuses it too (exit 2), its counts unwrapped" sh -c \
    "[ $? -eq 2 ] && grep -q 'more than 90%' '$SCRATCH/f7.out' && ! grep -q -- ' -[0-9]' '$SCRATCH/f7.out'"

# ---- 8. reading the configuration file --------------------------------------------
mkdir -p "$SCRATCH/adir"
one_line 2 "8: a directory as CONFIG is refused" "not a regular file" "$MOTSCALE" train "$SCRATCH/adir"
one_line 2 "8: /dev/null as CONFIG is refused" "not a regular file" "$MOTSCALE" train /dev/null
one_line 2 "8: /dev/zero as CONFIG is refused, no hang" "not a regular file" "$MOTSCALE" train /dev/zero
{ printf '[model]\n; %0210d d_model = 3\n' 0; printf 'n_layers = 1\n'; } >"$SCRATCH/long.ini"
$T "$MOTSCALE" flops "$SCRATCH/long.ini" >"$SCRATCH/long.out" 2>&1
check "8: the tail of a long comment is not read as a key" sh -c \
    "[ $? -eq 0 ] && grep -q 'd_model 64, n_layers 1' '$SCRATCH/long.out'"
{ printf '[model]\nn_layers = %0200d\nd_model = x\n' 1; } >"$SCRATCH/longkey.ini"
one_line 2 "8: a long key line is refused at its own line" "longkey.ini:2: 211 characters" \
    "$MOTSCALE" train "$SCRATCH/longkey.ini"
printf '[train\nsteps = 5\n[model]\nd_model = x\n' >"$SCRATCH/hdr.ini"
one_line 2 "8: a broken section header is named at its line" "hdr.ini:1: malformed section header" \
    "$MOTSCALE" train "$SCRATCH/hdr.ini"
printf '[train]\nsteps = 5\nsteps = 6\n' >"$SCRATCH/dup.ini"
one_line 2 "8: a key given twice is refused" "dup.ini:3: train.steps: set twice (first on line 2)" \
    "$MOTSCALE" train "$SCRATCH/dup.ini"
printf '[run]\nname = ab\000cd\n' >"$SCRATCH/nul.ini"
one_line 2 "8: a NUL byte is refused, with its line" "nul.ini:2: a NUL byte" "$MOTSCALE" train "$SCRATCH/nul.ini"

# ---- 9. ranges and the run directory, before anything is written -------------------
for kv in train.adam_eps=0 train.adam_eps=-1e-8 model.rope_theta=0 model.norm_eps=-1 model.init_std=1e9; do
    one_line 2 "9: $kv is refused" "${kv%%=*}" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r9 "$kv"
done
check "9: ... none of them created a run directory" [ ! -e "$SCRATCH/runs/r9" ]
mkdir -p "$SCRATCH/runs/r9f" && : >"$SCRATCH/runs/r9f/checkpoints"
one_line 2 "9: a checkpoints path that is a file is refused at the start" "is not a directory" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r9f
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r9d train.steps=10 log.quiet=true >/dev/null 2>&1
rm "$SCRATCH/runs/r9d/run.h5"
one_line 2 "9: checkpoints without their run.h5 are refused (rows would be lost)" "holds checkpoints but no run.h5" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=r9d train.steps=20 train.resume=auto

# ---- 10. signals before the loop -------------------------------------------------------
# no cached peak: the SGEMM probe runs first (about a second); TERM lands in it
"$MOTSCALE" train "$SCRATCH/base.ini" run.name=r10 run.out_dir="$SCRATCH/probe" log.peak_flops=0 \
    train.steps=1000 log.quiet=true >"$SCRATCH/r10.out" 2>&1 &
p10=$!
sleep 0.3
kill -TERM $p10
wait $p10
rc=$?
check "10: SIGTERM during the peak probe: checkpointed, exit 75, status preempted" sh -c \
    "[ $rc -eq 75 ] && grep -qx preempted '$SCRATCH/probe/r10/status' && ls '$SCRATCH/probe/r10/checkpoints' | grep -q ckpt"

# ... through mpirun and jobs/local: SIGTERM to mpirun makes every rank checkpoint and
# exit 75 while mpirun itself reports another status; jobs/local reads the status
# file and exits 75 (a preemption, not a failure)
sed -e "s|out_dir = .*|out_dir = $SCRATCH/exp10|" -e 's/^steps = 4$/steps = 100000/' "$SCRATCH/exp3.ini" >"$SCRATCH/exp10.ini"
MOTSCALE_NP=2 jobs/local "$SCRATCH/exp10.ini" >"$SCRATCH/exp10.out" 2>&1 &
p10=$!
for i in $(seq 200); do [ -f "$SCRATCH/exp10/p-dense/run.h5" ] && break; sleep 0.05; done
sleep 0.5
pkill -TERM -f "^mpirun.*exp10/p-dense"
wait $p10
rc=$?
check "10: SIGTERM to mpirun under jobs/local: the point checkpointed (status preempted), jobs/local exits 75" \
    sh -c "[ $rc -eq 75 ] && grep -qx preempted '$SCRATCH/exp10/p-dense/status'"

# ---- 11. token files and text import --------------------------------------------------
$PY - "$SCRATCH/wrap.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["tokens"] = np.arange(20, dtype=np.uint16) % 90 + 5
    big = np.uint64(2**64 - 10)
    f["spans"] = np.array([[0, big, 0], [big, 30, 0]], dtype=np.uint64)
    f.attrs["modalities"] = "text"           # h5py's default: variable-length UTF-8
    f.attrs["vocab_lo"] = np.array([0], np.int32)
    f.attrs["vocab_hi"] = np.array([96], np.int32)
EOF
one_line 2 "11: /spans lengths that wrap around uint64 are refused" "/spans[0]" "$MOTSCALE" data inspect "$SCRATCH/wrap.h5"
printf 'a \355\240\200 b' >"$SCRATCH/sur.txt"
one_line 2 "11: import-text refuses a UTF-8 surrogate" "byte offset 2" \
    "$MOTSCALE" data import-text "$SCRATCH/sur.txt" -o "$SCRATCH/sur.h5"
printf 'a \364\220\200\200 b' >"$SCRATCH/big.txt"
one_line 2 "11: import-text refuses a code point above U+10FFFF" "byte offset 2" \
    "$MOTSCALE" data import-text "$SCRATCH/big.txt" -o "$SCRATCH/big.h5"

# ---- 12. compare refuses what it cannot analyse -------------------------------------
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=c12 train.steps=20 log.every=1 log.quiet=true >/dev/null 2>&1
for bad in schema steps nan; do
    cp "$SCRATCH/runs/c12/run.h5" "$SCRATCH/$bad.h5"
    $PY - "$SCRATCH/$bad.h5" "$bad" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    if sys.argv[2] == "schema":
        f.attrs["schema_version"] = np.int32(99)
    elif sys.argv[2] == "steps":
        x = f["/metrics/step"][...]
        f["/metrics/step"][...] = x[::-1]
    else:
        f["/metrics/loss"][...] = np.nan
EOF
done
one_line 2 "12: compare refuses schema_version 99" "schema.h5: /@schema_version: is 99" \
    "$MOTSCALE" compare "$SCRATCH/runs/c12/run.h5" "$SCRATCH/schema.h5"
one_line 2 "12: compare refuses reversed steps" "steps.h5: /metrics/step: row 1" \
    "$MOTSCALE" compare "$SCRATCH/runs/c12/run.h5" "$SCRATCH/steps.h5"
one_line 2 "12: compare refuses an all-NaN candidate, naming it" "nan.h5: /metrics/loss: no finite value" \
    "$MOTSCALE" compare "$SCRATCH/runs/c12/run.h5" "$SCRATCH/nan.h5"
