#!/bin/sh
# `motscale train` end to end: two runs of one config give bit-identical loss
# sequences (overall and by modality, training and held-out); 300 steps of the demo
# config bring the loss clearly below the unigram entropy of its own data, which
# this script computes from the token stream (`motscale data gen`), not a constant.
. tests/lib.sh

# ---- determinism: a tiny three-modality config, twice --------------------------
cat >"$SCRATCH/tiny.ini" <<'INI'
[run]
seed = 7
[model]
kind = mot
d_model = 32
n_layers = 2
n_heads = 4
d_ff = 64
seq_len = 32
[data]
modalities = text,image,speech
mix = 2,1,1
image_h = 4
image_w = 4
[train]
steps = 20
global_batch = 4
warmup = 5
[log]
every = 1
eval_every = 10
eval_tokens = 256
quiet = true
peak_flops = 1e10
INI
for r in a b; do
    expect_status 0 "tiny run $r trains" "$MOTSCALE" train "$SCRATCH/tiny.ini" \
        run.out_dir="$SCRATCH/runs" run.name=$r
done
check "two runs: bit-identical /metrics/loss, loss_by_modality, tokens_by_modality and /eval" \
    $PY - "$SCRATCH/runs/a/run.h5" "$SCRATCH/runs/b/run.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
assert a["/metrics/step"].shape == (20,), a["/metrics/step"].shape
assert a["/metrics/loss_by_modality"].shape == (20, 3)
assert np.isfinite(a["/metrics/loss"][:]).all()
for k in ("/metrics/step", "/metrics/loss", "/metrics/loss_by_modality",
          "/metrics/tokens_by_modality", "/metrics/grad_norm", "/eval/loss", "/eval/loss_by_modality"):
    x, y = a[k][:], b[k][:]
    assert x.dtype == y.dtype and x.shape == y.shape and x.size > 0, k
    if x.tobytes() != y.tobytes():
        i = np.flatnonzero(x.ravel().view(np.uint8) != y.ravel().view(np.uint8))[0]
        sys.exit("%s differs, first at byte %d: %r vs %r" % (k, i, x.ravel()[:5], y.ravel()[:5]))
PY

# ---- learning: 300 steps of the demo config --------------------------------------
if [ -f experiments/demo.ini ]; then CFG=experiments/demo.ini; else CFG=tests/e2e/train.ini; fi
# One dense run of the demo's model and data, logged every 10 steps, held-out loss
# every 100 and at the end; the peak FLOP/s is given so no probe runs.
OVER="model.kind=dense train.steps=300 log.every=10 log.eval_every=100 log.quiet=true log.peak_flops=1e10 train.stop_at_loss_of="
# shellcheck disable=SC2086
expect_status 0 "300 steps of $CFG train" "$MOTSCALE" train "$CFG" $OVER \
    run.out_dir="$SCRATCH/runs" run.name=learn
# The same token stream, written out: the windows the 300 steps read, then held-out.
# shellcheck disable=SC2086
expect_status 0 "data gen writes the same stream" "$MOTSCALE" data gen "$CFG" $OVER -o "$SCRATCH/learn.h5"

# Margin: a model that learned only the token frequencies has cross-entropy >= the
# unigram entropy H (equality at the true frequencies), so it cannot go below H;
# 0.3 nats below (a quarter lower perplexity) needs the context the generators put
# in the data (text n-grams, image neighbours). The plug-in estimate of H from the
# ~150k training targets is biased low by about (V - 1) / 2N < 0.001 nats.
MARGIN=0.3
$PY - "$SCRATCH/runs/learn/run.h5" "$SCRATCH/learn.h5" $MARGIN >"$SCRATCH/learn.out" 2>&1 <<'PY'
import sys, h5py, numpy as np
run, tok, margin = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
t = tok["tokens"][:].astype(np.int64)
w, hs = int(tok.attrs["window"]), int(tok.attrs["heldout_start"])
targets = t[:hs].reshape(-1, w)[:, 1:].ravel()      # what training predicts
def entropy(x):
    c = np.bincount(x).astype(float)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum())
H = entropy(targets)
H_ho = entropy(t[hs:].reshape(-1, w)[:, 1:].ravel())
step = run["/metrics/step"][:]
loss = run["/metrics/loss"][:]
assert step[-1] == 300, step[-1]
smooth = float(loss[-5:].mean())                       # steps 260..300
ev_step, ev = run["/eval/step"][:], run["/eval/loss"][:]
assert ev_step[-1] == 300, ev_step
held = float(ev[-1])
V = len(np.unique(targets))
print("# unigram entropy %.4f nats (held-out targets %.4f; ln %d = %.4f), first logged loss %.4f, "
      "final smoothed train loss %.4f, final held-out loss %.4f, margin required %.2f"
      % (H, H_ho, V, np.log(V), loss[0], smooth, held, margin))
bad = []
if not held <= H - margin: bad.append("held-out loss %.4f not below H - %.2f = %.4f" % (held, margin, H - margin))
if not smooth <= H - margin: bad.append("train loss %.4f not below H - %.2f = %.4f" % (smooth, margin, H - margin))
if bad: sys.exit("; ".join(bad))
PY
rc=$?
cat "$SCRATCH/learn.out"
check "300 steps: held-out and smoothed training loss at least $MARGIN nats below the unigram entropy" [ $rc -eq 0 ]
