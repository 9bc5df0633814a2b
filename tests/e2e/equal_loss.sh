# train.stop_at_loss_of: a MoT run stops at the first logged step where its smoothed
# loss for every modality is at or below the dense baseline's final smoothed loss,
# and records where. The smoother (docs/analysis.md) is re-implemented here in Python
# from its documented equation, independently of the C code.
. tests/lib.sh
cfg="model.size=xs model.seq_len=32 train.global_batch=4 train.warmup=5 log.every=2 log.eval_every=0 log.quiet=true log.peak_flops=1e9 run.out_dir=$SCRATCH"
"$MOTSCALE" train tests/fixtures/defaults.ini $cfg model.kind=dense train.steps=60 run.name=base >/dev/null 2>&1
"$MOTSCALE" train tests/fixtures/defaults.ini $cfg model.kind=mot train.steps=400 run.name=cand \
    train.stop_at_loss_of="$SCRATCH/base/run.h5" >"$SCRATCH/cand.out" 2>&1
check "equal-loss run exits 0" [ $? -eq 0 ]
$PY - "$SCRATCH/base/run.h5" "$SCRATCH/cand/run.h5" <<'PYEOF'
import sys, math, h5py, numpy as np

def smooth(steps, x, window=0.1):
    # debiased EMA, tau = window * step, input linear between logged points
    m = w = 0.0; prev = 0; xp = None; out = []
    for s, v in zip(steps, x):
        if not math.isfinite(v):
            out.append(m / w if w else float("nan")); continue
        dt = float(s - prev) if s > prev else 1.0
        tau = window * s
        beta = math.exp(-dt / tau)
        corr = 0.0 if xp is None else (v - xp) / dt * (beta * dt - tau * (1 - beta))
        m = beta * m + (1 - beta) * v + corr
        w = beta * w + (1 - beta)
        prev, xp = s, v
        out.append(m / w)
    return np.array(out)

b = h5py.File(sys.argv[1], "r"); c = h5py.File(sys.argv[2], "r")
bs = b["metrics/step"][:]; cs = c["metrics/step"][:]
bl = b["metrics/loss_by_modality"][:]; cl = c["metrics/loss_by_modality"][:]
M = bl.shape[1]
target = [smooth(bs, bl[:, k])[-1] for k in range(M)]
sm = np.stack([smooth(cs, cl[:, k]) for k in range(M)], axis=1)
reached = np.all(sm <= np.array(target), axis=1)
n = 0
def tap(ok, what):
    global n; n += 1
    print(("ok" if ok else "not ok"), n, "-", what)
stopped = c.attrs.get("stopped_at_step")
tap(stopped is not None, "run record has /@stopped_at_step")
first = int(cs[np.argmax(reached)]) if reached.any() else None
print("# baseline final smoothed", [round(t, 4) for t in target], "; candidate reached at step", first,
      "; recorded", stopped, "of 400")
tap(first is not None and stopped is not None and int(stopped) == first,
    "stopped at the first logged step where every modality reached the baseline")
tap(int(cs[-1]) == first if first else False, "no rows after the stop")
tap(abs(float(c.attrs["stopped_at_flops"]) - float(c["metrics/flops"][-1])) <= 1e-9 * float(c["metrics/flops"][-1]),
    "stopped_at_flops equals the cumulative FLOPs of the last row")
PYEOF
check "status is completed" grep -qx completed "$SCRATCH/cand/status"
expect_status 2 "a missing baseline file is bad input" "$MOTSCALE" train tests/fixtures/defaults.ini $cfg run.name=bad \
    train.stop_at_loss_of="$SCRATCH/nothing.h5"
