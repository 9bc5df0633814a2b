#!/bin/sh
# Mixture of experts (issue 12; docs/model.md, "Mixture of experts"), through the
# trainer and `motscale flops`:
#  (a) one expert at capacity 1 is the dense model bit for bit (and the hybrid with
#      one expert is MoT bit for bit);
#  (b) MoE-4x at tp 2 (sharded experts), tp 2 with expert parallelism, dp 2 and
#      tp x dp = 2 x 2 against the one-rank run: the first steps within
#      TOL_F32_REORDER, every step within TOL_MOE_LAYOUT (a reordering can flip a
#      near-tie of expert choice), and each layout again bit for bit;
#  (c) SIGUSR1 + resume at tp 2 with expert parallelism: bit-identical, expert load too;
#  (d) the record: /metrics/expert_load sums to capacity x tokens per layer, the FLOP
#      column counts the experts' rows so the GEMM counter exceeds it by exactly the
#      dense model's attention excess, /model says the routing; top-1 held-out routing
#      changes /eval only;
#  (e) `motscale flops` against a hand count for three configurations, the router's
#      share and the ratio to dense printed;
#  (f) bad input: one line, exit 2.
. tests/lib.sh

# Routing groups are micro-batches, so every layout runs micro_batch = 4 (the one-rank
# run too): the same tokens meet in each group whatever the layout.
base_ini train.micro_batch=4
MOE="model.kind=moe model.moe_experts=4"

# ---- (a) one expert ------------------------------------------------------------------
run dense 1 model.kind=dense && run moe1 1 model.kind=moe model.moe_experts=1 &&
    check "moe with one expert at capacity 1 = dense, bit for bit" runcmp same "$SCRATCH/runs/dense/run.h5" "$SCRATCH/runs/moe1/run.h5"
run mot 1 model.kind=mot && run hyb1 1 model.kind=mot model.moe_towers=text model.moe_experts=1 &&
    check "MoT with a one-expert text tower = MoT, bit for bit" runcmp same "$SCRATCH/runs/mot/run.h5" "$SCRATCH/runs/hyb1/run.h5"

# ---- (b) layouts -------------------------------------------------------------------------
# shellcheck disable=SC2086
run moe-np1 1 $MOE model.moe_zloss=0.001
for layout in "tp2:2:parallel.tp=2" "ep2:2:parallel.tp=2 parallel.expert_parallel=true" \
    "dp2:2:parallel.dp=2" "tp2dp2:4:parallel.tp=2 parallel.dp=2 parallel.expert_parallel=true"; do
    lay=${layout%%:*} # not "name": run() sets it
    rest=${layout#*:}
    np=${rest%%:*}
    keys=${rest#*:}
    # shellcheck disable=SC2086
    run "moe-$lay" "$np" $MOE model.moe_zloss=0.001 $keys && run "moe-$lay-again" "$np" $MOE model.moe_zloss=0.001 $keys || continue
    check "moe $lay ($keys) = one rank: steps 1..$MOE_EXACT_STEPS within $TOL_F32_REORDER" \
        runcmp close "$SCRATCH/runs/moe-np1/run.h5" "$SCRATCH/runs/moe-$lay/run.h5" --tol "$TOL_F32_REORDER" --to "$MOE_EXACT_STEPS"
    check "moe $lay = one rank: every step within $TOL_MOE_LAYOUT (a near-tie may flip, tests/tolerances.env)" \
        runcmp close "$SCRATCH/runs/moe-np1/run.h5" "$SCRATCH/runs/moe-$lay/run.h5" --tol "$TOL_MOE_LAYOUT"
    check "moe $lay again: bit for bit" runcmp same "$SCRATCH/runs/moe-$lay/run.h5" "$SCRATCH/runs/moe-$lay-again/run.h5"
done

# ---- (c) SIGUSR1 + resume ----------------------------------------------------------------
# the pause of a held-out evaluation after step 20 lets the shell see the line and signal
EP="$MOE parallel.tp=2 parallel.expert_parallel=true train.steps=40 train.checkpoint_every=10 log.eval_every=20 log.eval_tokens=48000 log.quiet=false"
# shellcheck disable=SC2086
sigusr1_resume ep 2 $EP &&
    check "moe tp 2 expert parallel: SIGUSR1 (exit 75) + resume = straight, bit for bit" \
        runcmp same "$SCRATCH/runs/ep-straight/run.h5" "$SCRATCH/runs/ep-usr1/run.h5"

# ---- (d) the run record ------------------------------------------------------------------
# shellcheck disable=SC2086
run top1 1 $MOE log.eval_every=10 log.eval_tokens=512 model.moe_eval_routing=top1 &&
    run ec 1 $MOE log.eval_every=10 log.eval_tokens=512 &&
    check "the record: expert load, FLOPs against the GEMM counter, routing attributes, top-1 held-out" \
        $PY - "$SCRATCH/runs" <<'PYEOF'
import sys
import h5py, numpy as np
runs, bad = sys.argv[1], []
def col(name, k): return h5py.File("%s/%s/run.h5" % (runs, name), "r")["/metrics/" + k][:]
f = h5py.File(runs + "/moe-np1/run.h5", "r")
m = f["/model"].attrs
E, L, M = int(m["moe_experts"]), int(m["moe_layers"]), len(m["modality_names"])
load = f["/metrics/expert_load"][:]
tokens = np.diff(np.concatenate([[0], f["/metrics/tokens"][:]]))
if load.shape != (20, L * E * M) or (E, L, M) != (4, 2, 2):
    bad.append("expert_load shape %s, experts %d layers %d" % (load.shape, E, L))
per = load.reshape(-1, L, E, M)
# capacity 1, groups of 4 x 16 = 64 tokens: each expert takes 16 per micro-batch, 2 micro-batches
if not (per.sum(axis=3) == 32).all():
    bad.append("tokens per expert per step %s, want 32 everywhere" % np.unique(per.sum(axis=3)))
if not (per.sum(axis=(2, 3)) == tokens[:, None]).all():
    bad.append("tokens per layer != tokens of the step")
aux = f["/metrics/aux_loss"][:]
if not (np.all(aux > 0) and np.all(np.isfinite(aux))):
    bad.append("aux_loss %s" % aux[:3])
# experts issue exactly the rows they took: the GEMM counter's excess over the FLOP
# column is the attention's alone, the same as the dense model's
ex_moe = col("moe-np1", "gemm_flops") - col("moe-np1", "flops")
ex_dense = col("dense", "gemm_flops") - col("dense", "flops")
if not np.array_equal(ex_moe, ex_dense):
    bad.append("issued - model FLOPs: moe %s vs dense %s" % (ex_moe[:2], ex_dense[:2]))
for name, want in (("top1", "top1"), ("ec", "ec")):
    r = h5py.File("%s/%s/run.h5" % (runs, name), "r")["/model"].attrs["moe_eval_routing"]
    if r != want:
        bad.append("%s: /model@moe_eval_routing %s" % (name, r))
if not np.array_equal(col("top1", "loss"), col("ec", "loss")):
    bad.append("held-out routing changed the training losses")
e1 = h5py.File(runs + "/top1/run.h5", "r")["/eval/loss"][:]
e2 = h5py.File(runs + "/ec/run.h5", "r")["/eval/loss"][:]
if len(e1) != 2 or np.array_equal(e1, e2) or not np.all(np.isfinite(e1)):
    bad.append("held-out losses top1 %s ec %s" % (e1, e2))
for x in bad:
    print("#", x)
print("# expert load per step and layer: %d tokens, 32 per expert; top-1 held-out %s vs expert choice %s" %
      (tokens[0], e1, e2))
sys.exit(1 if bad else 0)
PYEOF

check "a MoE run record holds every documented object with its dtype and shape (tests/check_schema.py)" \
    $PY tests/check_schema.py docs/run-record.md "$SCRATCH/runs/top1/run.h5" ""

# the report: a candidate with experts against dense, its label, and the load table
# equal to the sums of the record's second half (computed here from the file)
mkdir -p "$SCRATCH/rep"
cp -r "$SCRATCH/runs/dense" "$SCRATCH/runs/moe-np1" "$SCRATCH/rep/"
"$MOTSCALE" report "$SCRATCH/rep" --out "$SCRATCH/rep/report" >"$SCRATCH/report.out" 2>&1
check "report: moe-4x against dense, and its expert load table equals the record's sums" \
    $PY - "$SCRATCH/rep" <<'PYEOF'
import re, sys
import h5py, numpy as np
d, bad = sys.argv[1], []
md = open(d + "/report/report.md").read()
if not re.search(r"\| series \| moe-4x \(1 seed\) \|", md):
    bad.append("no slope table with a moe-4x column")
f = h5py.File(d + "/moe-np1/run.h5", "r")
load, step = f["/metrics/expert_load"][:], f["/metrics/step"][:]
E, L, M = int(f["/model"].attrs["moe_experts"]), int(f["/model"].attrs["moe_layers"]), 2
s = load[2 * step > step[-1]].sum(axis=0).reshape(L, E, M)
for k in range(L):
    for e in range(E):
        want = "| %d | %d | %.1f%% | %.1f%% | %.0f |" % (k, e, 100 * s[k, e, 0] / s[k, e].sum(),
                                                      100 * s[k, e, 1] / s[k, e].sum(), s[k, e].sum())
        if want not in md:
            bad.append("load row missing: %s" % want)
    al = s[k].sum(axis=0)
    want = "| %d | all | %.1f%% | %.1f%% | %.0f |" % (k, 100 * al[0] / al.sum(), 100 * al[1] / al.sum(), al.sum())
    if want not in md:
        bad.append("load row missing: %s" % want)
import os
rep = d + "/report"
if not [x for x in os.listdir(rep) if "expert_load" in x and x.endswith(".png") and os.path.getsize(rep + "/" + x)]:
    bad.append("no expert load figure")
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
PYEOF

# ---- (e) FLOPs and parameters by hand ------------------------------------------------------
# flops_of NAME KEYS...: `motscale flops` of the base config with KEYS into $SCRATCH/NAME.flops
flops_of() {
    n=$1
    shift
    "$MOTSCALE" flops "$SCRATCH/base.ini" "$@" >"$SCRATCH/$n.flops" 2>&1
}
flops_of A model.kind=moe model.moe_experts=4 &&
    flops_of B model.kind=moe model.moe_experts=8 model.moe_capacity=2 model.qk_norm=true &&
    flops_of C model.kind=mot model.moe_towers=text model.moe_experts=4 model.moe_capacity=1.5 &&
    check "motscale flops = a hand count for moe E4, moe E8 capacity 2 with QK-norm, MoT + text MoE E4 capacity 1.5" \
        $PY - "$SCRATCH" <<'PYEOF'
import sys
scratch, bad = sys.argv[1], []
# the base: d 32, 2 layers, d_ff 64, seq 16, text + image: vocab 160
d, L, f, T, V = 32, 2, 64, 16, 160
def read(n):
    vals = {}
    for line in open("%s/%s.flops" % (scratch, n)):
        parts = line.strip().rsplit(None, 1)
        if len(parts) == 2:
            vals[parts[0].strip()] = parts[1]
    return vals
def hand(E, c, qk, towers, expert_towers):
    emb = 2 * V * d
    attn = 4 * d * d + 2 * d + (2 * d if qk else 0)
    dense_tower = L * (attn + 3 * d * f) + d
    moe_tower = L * (attn + E * 3 * d * f + d * E) + d
    total = emb + (towers - expert_towers) * dense_tower + expert_towers * moe_tower
    active = emb + L * (attn + d * E + round(c * 3 * d * f)) + d
    fwd = L * 8 * d * d + L * 2 * d * E + L * c * 6 * d * f + L * 2 * T * d + 2 * d * V
    dense_fwd = L * 8 * d * d + L * 6 * d * f + L * 2 * T * d + 2 * d * V
    return total, active, fwd, 100 * L * 2 * d * E / fwd, fwd / dense_fwd
for n, args in (("A", (4, 1, False, 1, 1)), ("B", (8, 2, True, 1, 1)), ("C", (4, 1.5, False, 2, 1))):
    v = read(n)
    total, active, fwd, share, ratio = hand(*args)
    got = (int(v["total"]), int(v["active per token"]), float(v["forward"]), float(v["router share of forward"].rstrip("%")),
           float(v["forward / dense forward"]))
    if got[:3] != (total, active, fwd) or abs(got[3] - share) > 5e-4 or abs(got[4] - ratio) > 5e-5 or \
            float(v["train"]) != 3 * fwd:
        bad.append("%s: printed %s, by hand %s" % (n, got, (total, active, fwd, share, ratio)))
    print("# %s: %d params (%d active), forward %.0f FLOPs/token, router %.3f%%, %.4f x dense" %
          (n, total, active, fwd, share, ratio))
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
PYEOF

# ---- (f) bad input -----------------------------------------------------------------------
expect_status 2 "expert_parallel without experts: exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" parallel.expert_parallel=true
grep -q "parallel.expert_parallel" "$SCRATCH/last.out" || not_ok "the message names parallel.expert_parallel"
expect_status 2 "moe_towers with kind = dense: exit 2" "$MOTSCALE" flops "$SCRATCH/base.ini" model.moe_towers=text
expect_status 2 "moe_towers naming no modality: exit 2" "$MOTSCALE" flops "$SCRATCH/base.ini" model.kind=mot model.moe_towers=speech
expect_status 2 "3 experts over tp 2 with expert_parallel: exit 2" "$MOTSCALE" flops "$SCRATCH/base.ini" \
    model.kind=moe model.moe_experts=3 parallel.tp=2 parallel.expert_parallel=true
expect_status 2 "moe_experts = 0: exit 2" "$MOTSCALE" flops "$SCRATCH/base.ini" model.kind=moe model.moe_experts=0
