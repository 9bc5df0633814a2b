#!/bin/sh
# Seeded fuzzing of what users hand motscale: configuration files, token files and
# checkpoints with random bytes flipped, inserted or cut. Every run is under timeout
# and must end with exit 0, 1 or 2, one line when it refuses (2), no sanitizer report
# (under make check SANITIZE=1), and a resume never continues from a corrupted
# tensor: a resumed run either falls back to the older checkpoint or continues
# exactly as from the intact one. Deterministic for FUZZ_SEED; FUZZ_N scales it.
. tests/lib.sh
SEED=${FUZZ_SEED:-20261202}
N=${FUZZ_N:-1}
T="timeout 30"

# mutate IN OUT K: OUT is IN with case K's random edits (seeded by SEED and K)
mutate() {
    $PY - "$1" "$2" "$SEED" "$3" <<'EOF'
import random, sys
src, dst, seed, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = random.Random(seed * 1000003 + k)
b = bytearray(open(src, "rb").read())
for _ in range(r.randint(1, 4)):
    op, at = r.random(), r.randrange(len(b))
    if op < 0.6:
        b[at] ^= 1 << r.randrange(8)                    # flip a bit
    elif op < 0.8:
        b[at:at] = bytes(r.randrange(256) for _ in range(r.randint(1, 8)))  # insert
    else:
        del b[at:at + r.randint(1, 8)]                  # cut
open(dst, "wb").write(bytes(b))
EOF
}

# verdict NAME RC OUT: the run's status is 0, 1 or 2, a refusal is one line, and
# nothing a sanitizer or the C library prints about memory is there
verdict() {
    lines=$(grep -c . "$3")
    if grep -qE "runtime error|AddressSanitizer|LeakSanitizer|Segmentation|Aborted|infinite loop" "$3"; then
        echo "$1: a crash or sanitizer report"
    elif [ "$2" -gt 2 ]; then
        echo "$1: exit $2"
    elif [ "$2" -eq 2 ] && [ "$lines" -ne 1 ]; then
        echo "$1: exit 2 with $lines lines"
    fi
}

# ---- configuration files (read by motscale flops: the whole configuration path) ----
base_ini model.kind=mot data.modalities=text,image,speech data.mix=2,1,1 train.steps=10
bad=""
n=$((40 * N))
for k in $(seq "$n"); do
    mutate "$SCRATCH/base.ini" "$SCRATCH/c.ini" "$k"
    $T "$MOTSCALE" flops "$SCRATCH/c.ini" >"$SCRATCH/c.out" 2>&1
    bad="$bad$(verdict "config $k" $? "$SCRATCH/c.out")"
done
check "config: $n mutated files, each exit 0 or 2 with one line, no crash${bad:+: $bad}" [ -z "$bad" ]

# ---- token files (read by motscale data inspect: the whole validation) ------------
"$MOTSCALE" data gen "$SCRATCH/base.ini" -o "$SCRATCH/tok.h5" --windows 20 --heldout-windows 4 >/dev/null
bad=""
n=$((20 * N))
for k in $(seq "$n"); do
    mutate "$SCRATCH/tok.h5" "$SCRATCH/t.h5" "$k"
    $T "$MOTSCALE" data inspect "$SCRATCH/t.h5" >"$SCRATCH/t.out" 2>&1
    bad="$bad$(verdict "token file $k" $? "$SCRATCH/t.out")"
done
check "token files: $n mutated files, each exit 0 or 2 with one line, no crash${bad:+: $bad}" [ -z "$bad" ]

# ---- checkpoints -------------------------------------------------------------------
# a 10-step run with checkpoints at 5 and 10, and the reference: its resume to 15 steps
"$MOTSCALE" train "$SCRATCH/base.ini" run.name=orig train.checkpoint_every=5 log.quiet=true >/dev/null 2>&1
echo preempted >"$SCRATCH/runs/orig/status"
cp -r "$SCRATCH/runs/orig" "$SCRATCH/runs/ref"
$T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=ref train.steps=15 train.resume=auto log.quiet=true \
    >/dev/null 2>&1 || not_ok "checkpoint fuzz: the reference resume failed"
bad=""
fell=0 same=0 refused=0
n=$((12 * N))
for k in $(seq "$n"); do
    rm -rf "$SCRATCH/runs/m"
    cp -r "$SCRATCH/runs/orig" "$SCRATCH/runs/m"
    mutate "$SCRATCH/runs/orig/checkpoints/ckpt-000000010.h5" "$SCRATCH/runs/m/checkpoints/ckpt-000000010.h5" "$k"
    $T "$MOTSCALE" train "$SCRATCH/base.ini" run.name=m train.steps=15 train.resume=auto log.quiet=true \
        >"$SCRATCH/m.out" 2>&1
    rc=$?
    # exit 0 after a warning is fine; the verdict's one-line rule is for refusals
    bad="$bad$(verdict "checkpoint $k" $rc "$SCRATCH/m.out")"
    if [ $rc -ne 0 ]; then
        refused=$((refused + 1))
    elif grep -q "resumed from the older checkpoint" "$SCRATCH/m.out"; then
        fell=$((fell + 1))
    elif runcmp same "$SCRATCH/runs/ref/run.h5" "$SCRATCH/runs/m/run.h5" --from 10 >/dev/null; then
        same=$((same + 1)) # the edit missed every tensor value (metadata slack)
    else
        bad="${bad}checkpoint $k: resumed from the damaged checkpoint with other numbers; "
    fi
done
echo "# checkpoints: $n mutated: $fell fell back to the older one, $same resumed unchanged, $refused refused"
check "checkpoints: $n mutated, never a resume from a corrupted tensor, no crash${bad:+: $bad}" [ -z "$bad" ]
