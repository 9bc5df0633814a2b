#!/bin/sh
# Where the time of each benchmark goes, for the roofline lines of docs/performance.md:
# every benchmark configuration of bench/run runs once under `perf record -e cpu-clock`
# (a software clock: this VM has no hardware counters), all processes of the job, and
# the samples are split by the shared object they fall in:
#   GEMM          libopenblas, libscalapack (every matrix product; PyTorch's too)
#   elementwise   the motscale binary, libtorch_cpu, libc10, libsleef, libm, libc (norms,
#                 RoPE, softmax, SwiGLU, cross-entropy, AdamW, copies; PyTorch's
#                 operators and autograd)
#   communication libmpi, libopen-pal, libopen-rte, Open MPI components, PMIx, hwloc
#                 (MPI calls, including their waits: Open MPI polls)
#   other         the kernel (page faults: PyTorch maps fresh memory for its activations
#                 every step), the Python interpreter, start-up (GSL draws, HDF5)
# Shares are of all samples of the run, start-up and checkpoint write included (runs
# are long enough that start-up is a few percent). Not part of make bench: it needs
# perf (Debian's linux-perf).
#   BUILD=build sh bench/roofline.sh
. bench/lib.sh
if ! perf stat -e cpu-clock true >/dev/null 2>&1; then
    echo "bench/roofline.sh: perf is missing or not permitted (apt-get install linux-perf)" >&2
    exit 2
fi

# shares FILE.data LABEL: one line of the four shares
shares() {
    perf report -i "$1" --sort dso --stdio 2>/dev/null | awk -v label="$2" '
        /^#/ || NF < 2 { next }
        {
            p = $1; sub(/%/, "", p); d = $2
            if (d ~ /libopenblas|libscalapack/) g += p
            else if (d ~ /^motscale$|libtorch_cpu|libc10|libsleef|^libm[.]|^libc[.]/) e += p
            else if (d ~ /libmpi|libopen-pal|libopen-rte|^mca_|libpmix|libhwloc|libevent/) c += p
            else o += p
        }
        END { printf "%-62s GEMM %5.1f%%  elementwise %5.1f%%  communication %5.1f%%  other %5.1f%%\n", label, g, e, c, o }'
}

# record NAME LABEL command...: run under perf, print its shares
record() {
    name=$1
    label=$2
    shift 2
    if ! perf record -q -e cpu-clock -F 499 -o "$SCRATCH/$name.data" -- "$@" >"$SCRATCH/$name.out" 2>&1; then
        echo "bench/roofline.sh: $label failed:" >&2
        tail -3 "$SCRATCH/$name.out" >&2
        exit 1
    fi
    shares "$SCRATCH/$name.data" "$label"
}

q="log.every=1 log.eval_every=0 log.quiet=true log.peak_flops=1e9 run.out_dir=$SCRATCH"
for d in 256 512; do
    h=$((d / 64))
    steps=$((d == 256 ? 12 : 10))
    m="model.d_model=$d model.n_layers=4 model.n_heads=$h model.d_ff=$((4 * d)) model.seq_len=256"
    record "m$d" "motscale dense d $d, L 4, T 256, B 8, V 4096 ($steps steps)" "$MOTSCALE" train "$DEFAULTS" $m \
        train.global_batch=8 data.modalities=text data.mix=1 data.vocab_text=4096 train.steps=$steps $q run.name=m$d
    record "t$d" "PyTorch dense d $d, the same ($steps steps)" $PY bench/torch_ref.py bench --d-model $d \
        --n-layers 4 --n-heads $h --d-ff $((4 * d)) --seq-len 256 --batch 8 --vocab 4096 --steps $steps
done
s="model.size=s model.seq_len=128 train.global_batch=8 train.steps=60 data.modalities=text,image data.mix=1,1"
record dense-s "bench_mot: dense, size s, 2 modalities (60 steps)" "$MOTSCALE" train "$DEFAULTS" $s $q run.name=dense-s
record mot-s "bench_mot: mot, size s, 2 modalities (60 steps)" "$MOTSCALE" train "$DEFAULTS" $s model.kind=mot $q run.name=mot-s
p="model.seq_len=64 train.steps=30 $q"
record dp2 "bench_parallel: dp=2, size s, 16 seq (30 steps, 2 ranks)" $MPIRUN_CORE 2 "$MOTSCALE" train "$DEFAULTS" \
    model.size=s train.global_batch=16 $p run.name=dp2
w="model.d_model=512 model.n_heads=8 model.d_ff=2048 model.n_layers=2 train.global_batch=8"
record tp1 "bench_parallel: tp=1, d 512, L 2, T 64, B 8 (30 steps)" $MPIRUN_CORE 1 "$MOTSCALE" train "$DEFAULTS" \
    $w $p run.name=tp1
record tp2 "bench_parallel: tp=2, the same (30 steps, 2 ranks)" $MPIRUN_CORE 2 "$MOTSCALE" train "$DEFAULTS" \
    $w parallel.tp=2 $p run.name=tp2
record sl2 "bench_tp_backend: scalapack tp=2, the same (30 steps, 2 ranks)" $MPIRUN 2 "$MOTSCALE" train "$DEFAULTS" \
    $w parallel.tp=2 parallel.tp_backend=scalapack $p run.name=sl2
# the trainer's own split for the parallel runs: communication seconds / step seconds
for r in dp2 tp2 sl2; do
    $PY - "$SCRATCH/$r/run.h5" "$r" <<'EOF'
import sys, h5py
m = h5py.File(sys.argv[1], "r")["metrics"]
print("%-62s communication by the trainer's clock (comm_time / step_time, steps 6..): %.1f%%"
      % (sys.argv[2], 100 * m["comm_time"][5:].sum() / m["step_time"][5:].sum()))
EOF
done
