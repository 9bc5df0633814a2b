#!/bin/sh
# The run record of real training runs (DESIGN.md §6, docs/run-record.md): a MoT run
# with three modalities under mpirun -np 2 (dp 2), logging every 2 steps and
# evaluating every 4, and a one-rank run stopped by train.stop_at_loss_of (the only
# runs that carry the optional attributes). h5py finds and reads every object and
# attribute the documentation's table lists, with its documented dtype and shape, and
# nothing undocumented; h5dump -H reads the files; and the columns agree with each
# other and with the configuration: steps strictly increasing at the logging cadence,
# tokens = step x global_batch x seq_len, flops = tokens x /model@flops_per_token,
# flops_per_token and params_total from their closed forms (DESIGN.md §3 and the
# checkpoint's tensors), loss the token-weighted mean of loss_by_modality, step_time
# the maximum over /ranks.
. tests/lib.sh
DOC=$PWD/docs/run-record.md

base_ini run.seed=3 model.kind=mot data.modalities=text,image,speech data.mix=1,1,1 train.steps=11 \
    train.global_batch=4 log.every=2 log.eval_every=4 log.eval_tokens=256 log.flush_every=4

timeout 300 $MPIRUN 2 "$MOTSCALE" train "$SCRATCH/base.ini" run.name=dp2 </dev/null >"$SCRATCH/dp2.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { not_ok "training run (np 2) exit $rc"; sed 's/^/# /' "$SCRATCH/dp2.out" | tail -5; exit 1; }
timeout 300 $MPIRUN 1 "$MOTSCALE" train "$SCRATCH/base.ini" run.name=stopped train.steps=40 \
    train.stop_at_loss_of="$SCRATCH/runs/dp2/run.h5" </dev/null >"$SCRATCH/stopped.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { not_ok "stop_at_loss_of run exit $rc"; sed 's/^/# /' "$SCRATCH/stopped.out" | tail -5; }

for run in dp2 stopped; do
    check "$run: h5dump -H reads run.h5" sh -c "h5dump -H '$SCRATCH/runs/$run/run.h5' >'$SCRATCH/$run.dump' 2>&1"
done

# Parse the docs table (tests/check_schema.py, shared with runlog_h5py.sh: rows whose first cell is a `/...`
# path: path, kind, dtype, shape); read every object and attribute of a real run file.
# argv: doc, file, "required" if the optional attributes must be there too
check "dp2: every documented dataset and attribute is there with its dtype and shape, and reads" \
    $PY "tests/check_schema.py" "$DOC" "$SCRATCH/runs/dp2/run.h5" ""
check "stopped: the same, the optional stopped_at_* attributes included" \
    $PY "tests/check_schema.py" "$DOC" "$SCRATCH/runs/stopped/run.h5" required
# the checkpoint of the dp2 run against the documented checkpoint table and fingerprint
check "dp2: its final checkpoint holds exactly the documented attributes, groups and float32 tensors; the fingerprint follows the documented formula" \
    $PY "tests/check_schema.py" "$DOC" "$SCRATCH/runs/dp2/checkpoints/ckpt-000000011.h5" checkpoint \
    "$SCRATCH/runs/dp2/run.h5"

# The cumulative-FLOPs identity (a running double sum of integer-valued terms) and the
# loss identity (per-modality means recombined in double) hold to TOL_EXACT_REL.

check "dp2: steps, tokens, FLOPs, params, losses and timings agree with the configuration" \
    $PY - "$SCRATCH/runs/dp2" "$TOL_EXACT_REL" <<'EOF'
import re, sys
import h5py, numpy as np

run, tol = sys.argv[1], float(sys.argv[2])
bad = []
def expect(cond, msg):
    if not cond:
        bad.append(msg)

f = h5py.File(run + "/run.h5", "r")
g = lambda k: f["/metrics/" + k][:]
m = f["/model"].attrs
gb, T, steps, d, L, H, F = 4, 16, 11, 32, 2, 4, 64

# root and model attributes against the configuration
expect(int(f.attrs["schema_version"]) == 1, "schema_version %r" % f.attrs["schema_version"])
expect((int(f.attrs["world_size"]), int(f.attrs["dp"]), int(f.attrs["tp"])) == (2, 2, 1),
       "world/dp/tp %r %r %r" % (f.attrs["world_size"], f.attrs["dp"], f.attrs["tp"]))
expect(f.attrs["run_name"] == "dp2" and f.attrs["tp_backend"] == "megatron", "run_name/tp_backend")
expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", f.attrs["created_utc"]) is not None,
       "created_utc %r" % f.attrs["created_utc"])
expect(f.attrs["hdf5_version"].startswith("HDF5 1."), "hdf5_version %r" % f.attrs["hdf5_version"])
expect(f.attrs["git_commit"] != "" and f.attrs["mpi_library_version"] != "" and f.attrs["blas"] != "",
       "provenance strings empty")
expect(float(f.attrs["peak_flops_per_rank"]) == 1e9 and f.attrs["peak_flops_source"].startswith("config"),
       "peak %r from %r" % (f.attrs["peak_flops_per_rank"], f.attrs["peak_flops_source"]))
cfg = f.attrs["config"]
for key in ("kind = mot", "d_model = 32", "steps = 11", "eval_every = 4", "modalities = text,image,speech"):
    expect(key in cfg, "config attribute lacks %r" % key)
expect(m["kind"] == "mot" and (int(m["d_model"]), int(m["n_layers"]), int(m["n_heads"]), int(m["d_ff"]),
       int(m["seq_len"])) == (d, L, H, F, T), "model attributes %r" % dict(m))
expect(list(m["modality_names"]) == ["text", "image", "speech"], "modality_names %r" % m["modality_names"])
expect(list(m["tower_of"]) == [0, 1, 2] and int(m["n_towers"]) == 3, "tower_of %r" % m["tower_of"])
V = int(m["vocab_size"])
expect(V == 96 + 64 + 32, "vocab_size %d, want the default 96 + 64 + 32" % V)

# FLOPs per token: DESIGN.md §3, 3 x (L x layer + head)
fpt = 3 * (L * (2 * 4 * d * d + 2 * 3 * d * F + 2 * T * d) + 2 * d * V)
expect(float(m["flops_per_token"]) == fpt, "flops_per_token %r, DESIGN.md §3 gives %d" % (m["flops_per_token"], fpt))

# parameters: the checkpoint holds every tensor whole; count them
with h5py.File(run + "/checkpoints/ckpt-%09d.h5" % steps, "r") as c:
    sizes = {k: c["/params/" + k].size for k in c["/params"]}
total = sum(sizes.values())
active = sum(v for k, v in sizes.items() if not k.startswith("tower") or k.startswith("tower0."))
expect(int(m["params_total"]) == total, "params_total %r, checkpoint has %d" % (m["params_total"], total))
expect(int(m["params_active_per_token"]) == active,
       "params_active_per_token %r, checkpoint: shared + one tower = %d" % (m["params_active_per_token"], active))

# rows: logged every 2 steps and at the last
step = g("step")
expect(list(step) == [2, 4, 6, 8, 10, 11], "steps %s, want 2,4,..,10,11" % step)
expect(np.all(np.diff(step) > 0), "steps not strictly increasing")
tokens, flops = g("tokens"), g("flops")
expect(np.array_equal(tokens, step * gb * T), "tokens %s, want step x %d x %d" % (tokens, gb, T))
tbm = g("tokens_by_modality")
expect(np.all(tbm.sum(axis=1) == gb * T), "tokens_by_modality rows sum to %s, want %d" % (tbm.sum(axis=1), gb * T))
r = np.abs(flops - tokens * fpt) / (tokens * fpt)
expect(r.max() <= tol, "flops vs tokens x flops_per_token: rel %.2e" % r.max())
print("# flops = tokens x flops_per_token: max rel deviation %.1e; fpt %d" % (r.max(), fpt))
gf = g("gemm_flops")
expect(np.all(np.diff(gf) > 0) and gf[0] > 0, "gemm_flops not increasing: %s" % gf)

# loss of a step = token-weighted mean of the per-modality losses of that step
lbm, loss = g("loss_by_modality"), g("loss")
with np.errstate(invalid="ignore"):
    w = np.nansum(np.where(tbm > 0, lbm * tbm, 0), axis=1) / tbm.sum(axis=1)
expect(np.array_equal(np.isnan(lbm), tbm == 0), "NaN in loss_by_modality where tokens_by_modality is not 0")
r = np.abs(w - loss) / loss
expect(r.max() <= tol, "loss vs weighted loss_by_modality: rel %.2e" % r.max())
expect(np.all((loss > 0) & (loss < 2 * np.log(V))), "loss out of range: %s" % loss)

# times and the per-rank table
wt, st = g("wall_time"), g("step_time")
expect(np.all(np.diff(wt) > 0) and wt[0] > 0, "wall_time not increasing: %s" % wt)
rs, rc = f["/ranks/step_time"][:], f["/ranks/comm_time"][:]
expect(rs.shape == (6, 2) and rc.shape == (6, 2), "ranks shapes %s %s" % (rs.shape, rc.shape))
expect(np.array_equal(st, rs.max(axis=1)), "metrics/step_time %s is not the max over ranks %s" % (st, rs))
expect(np.all(rs > 0) and np.all(rc >= 0) and np.all(rc <= rs), "per-rank times out of range")
for k in ("compute_time", "comm_time", "io_time"):
    v = g(k)
    expect(np.all(v >= 0) and np.all(v <= st), "%s not within [0, step_time]: %s" % (k, v))
lr = g("lr")
expect(np.all(lr > 0) and np.all(lr <= 3e-3), "lr %s" % lr)
expect(np.all(g("grad_norm") > 0), "grad_norm not positive")

# evaluation every 4 steps and at the last; flops and wall_time those of the step
es = f["/eval/step"][:]
expect(list(es) == [4, 8, 11], "eval steps %s, want 4, 8, 11" % es)
for i, s in enumerate(es):
    expect(f["/eval/flops"][i] == s * gb * T * fpt, "eval flops at %d: %r" % (s, f["/eval/flops"][i]))
expect(np.all(np.diff(f["/eval/wall_time"][:]) > 0), "eval wall_time not increasing")
el, elm = f["/eval/loss"][:], f["/eval/loss_by_modality"][:]
expect(np.all(np.isfinite(el)) and elm.shape == (3, 3), "eval loss %s %s" % (el, elm.shape))
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
EOF

check "stopped: stopped_at_* attributes match the last row and name the baseline" \
    $PY - "$SCRATCH/runs/stopped/run.h5" "$SCRATCH/runs/dp2/run.h5" <<'EOF'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    a = f.attrs
    step, flops, wt = f["/metrics/step"][-1], f["/metrics/flops"][-1], f["/metrics/wall_time"][-1]
    assert a["stopped_at_loss_of"] == sys.argv[2], a["stopped_at_loss_of"]
    assert a["stopped_at_step"] == step and step < 40, (a["stopped_at_step"], step)
    assert a["stopped_at_flops"] == flops, (a["stopped_at_flops"], flops)
    assert abs(a["stopped_at_wall_time"] - wt) <= 1.0, (a["stopped_at_wall_time"], wt)
print("# stopped at step %d of 40" % step)
EOF
