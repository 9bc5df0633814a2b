#!/bin/sh
# Continuous images under a diffusion loss (issue 14; docs/model.md, "Continuous
# images"), through the trainer:
#  (a) tp 2 (Megatron and ScaLAPACK), dp 2 and tp x dp = 2 x 2, dense and MoT, against the one-rank run within
#      TOL_F32_REORDER, and a layout again bit for bit;
#  (b) SIGUSR1 + resume at tp 2 (MoT): bit-identical, the held-out image metrics too;
#  (c) at a tiny size in 400 steps: the held-out diffusion loss, at its own timesteps
#      and at every timestep of the grid, is below 1 (predicting zero noise), and DDIM
#      samples from their captions score better than the pure noise they start from;
#      the record holds every documented object (tests/check_schema.py);
#  (d) dense and MoT count the same FLOPs per token, and an image token costs the
#      documented extra terms (checked against the record);
#  (e) bad input: one line naming the key, exit 2;
#  (f) token files: `data gen` of a diffusion config writes /patches and /kinds, and
#      training from the file equals the synthetic run bit for bit (held-out image
#      metrics too); a non-finite patch, a wrong kind or a file without patches: one
#      line naming the dataset and offset, exit 2.
. tests/lib.sh

IMG="model.image_objective=diffusion data.image_h=4 data.image_w=4 model.seq_len=48"
# shellcheck disable=SC2086
base_ini $(echo $IMG | tr ' ' '\n')

# ---- (a) layouts -------------------------------------------------------------------------
run dense-np1 1 && run mot-np1 1 model.kind=mot
for layout in "dense-tp2:2:parallel.tp=2" "dense-dp2:2:parallel.dp=2" "dense-sl2:2:parallel.tp=2 parallel.tp_backend=scalapack" \
    "mot-tp2dp2:4:model.kind=mot parallel.tp=2 parallel.dp=2"; do
    lay=${layout%%:*}
    rest=${layout#*:}
    np=${rest%%:*}
    keys=${rest#*:}
    ref=${lay%%-*}-np1
    # shellcheck disable=SC2086
    run "$lay" "$np" $keys || continue
    check "diffusion $lay ($keys) = one rank within $TOL_F32_REORDER" \
        runcmp close "$SCRATCH/runs/$ref/run.h5" "$SCRATCH/runs/$lay/run.h5" --tol "$TOL_F32_REORDER"
done
run mot-tp2dp2-again 4 model.kind=mot parallel.tp=2 parallel.dp=2 &&
    check "diffusion mot tp 2 x dp 2 again: bit for bit" \
        runcmp same "$SCRATCH/runs/mot-tp2dp2/run.h5" "$SCRATCH/runs/mot-tp2dp2-again/run.h5"

# ---- (b) SIGUSR1 + resume ------------------------------------------------------------------
EP="model.kind=mot parallel.tp=2 train.steps=40 train.checkpoint_every=10 log.eval_every=20 log.eval_tokens=24000 log.quiet=false"
# shellcheck disable=SC2086
if sigusr1_resume tp 2 $EP; then
    check "diffusion tp 2: SIGUSR1 (exit 75) + resume = straight, bit for bit" \
        runcmp same "$SCRATCH/runs/tp-straight/run.h5" "$SCRATCH/runs/tp-usr1/run.h5" &&
        check "... and its held-out diffusion metrics (loss by modality, the t grid, captions), bit for bit" \
            $PY - "$SCRATCH/runs/tp-straight/run.h5" "$SCRATCH/runs/tp-usr1/run.h5" <<'PYEOF'
import sys
import h5py
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
bad = [k for k in ("step", "loss_by_modality", "image_loss_at_t", "caption_loss")
       if a["/eval/" + k][()].tobytes() != b["/eval/" + k][()].tobytes()]
print("# /eval rows %d; differing: %s" % (a["/eval/step"].shape[0], bad or "none"))
sys.exit(1 if bad or a["/eval/step"].shape[0] != 2 else 0)
PYEOF
fi

# ---- (c) it learns: held-out diffusion loss and the sampling check -------------------------
run learn 1 train.lr=1e-2 train.lr_min=1e-3 train.steps=400 log.every=50 log.eval_every=200 log.eval_tokens=4096 model.sample_steps=20 &&
    check "400 steps: held-out diffusion loss < 1 (zero-noise prediction) at every t; DDIM samples beat pure noise" \
        $PY - "$SCRATCH/runs/learn/run.h5" <<'PYEOF'
import sys
import h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
e, names = f["/eval"], [n.decode() if isinstance(n, bytes) else n for n in f["/model"].attrs["modality_names"]]
img = names.index("image")
final, grid = e["loss_by_modality"][-1, img], e["image_loss_at_t"][-1]
mse, noise, acc = e["sample_mse"][-1], e["sample_noise_mse"][-1], e["sample_class_accuracy"][-1]
print("# held-out image loss %.4f, at t = %s: %s; caption loss %.3f; sample MSE %.4f vs pure noise %.4f; "
      "blob classes %.2f right" % (final, list(f["/model"].attrs["diffusion_eval_t"]), np.round(grid, 4),
                                   e["caption_loss"][-1], mse, noise, acc))
ok = final < 1.0 and np.all(grid < 1.0) and mse < noise and np.isnan(e["sample_mse"][0])
ok = ok and np.isfinite(e["caption_loss"][-1]) and e["image_loss_at_t"].shape == (2, 4)
sys.exit(0 if ok else 1)
PYEOF
check "a diffusion run record holds every documented object with its dtype and shape (tests/check_schema.py)" \
    $PY tests/check_schema.py docs/run-record.md "$SCRATCH/runs/learn/run.h5" ""

# the report's table of continuous-image metrics equals the records' final evaluations
mkdir -p "$SCRATCH/rep"
cp -r "$SCRATCH/runs/learn" "$SCRATCH/runs/tp-straight" "$SCRATCH/rep/"
"$MOTSCALE" report "$SCRATCH/rep" --out "$SCRATCH/rep/report" >"$SCRATCH/report.out" 2>&1
check "report: the continuous-image table holds each run's final held-out metrics" \
    $PY - "$SCRATCH/rep" <<'PYEOF'
import re, sys
import h5py, numpy as np
d, bad = sys.argv[1], []
md = open(d + "/report/report.md").read()
if "### Continuous images" not in md:
    bad.append("no continuous-images section")
for name in ("learn", "tp-straight"):
    e = h5py.File("%s/%s/run.h5" % (d, name), "r")["/eval"]
    lbm, grid = e["loss_by_modality"][-1], e["image_loss_at_t"][-1]
    cells = ["%.4f" % lbm[0], "%.4f" % lbm[1]] + ["%.4f" % g for g in grid] + ["%.3f" % e["caption_loss"][-1]]
    row = " | ".join(cells)
    if row not in md:
        bad.append("%s: no row with %s" % (name, row))
    print("# %s: %s" % (name, row))
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
PYEOF

# ---- (d) FLOPs ----------------------------------------------------------------------------
check "dense and MoT: equal FLOPs per token; an image token costs the documented extra terms" \
    $PY - "$SCRATCH/runs" <<'PYEOF'
import sys
import h5py, numpy as np
runs = sys.argv[1]
d, m = (h5py.File("%s/%s/run.h5" % (runs, n), "r") for n in ("dense-np1", "mot-np1"))
fd, fm = d["/model"].attrs["flops_per_token"], m["/model"].attrs["flops_per_token"]
# base.ini: d 32, L 2, f 64, s 48, patch_dim 8, 4 x 4 patches; V from the record
a = d["/model"].attrs
dd, L, f, s, P, n, V = 32, 2, 64, 48, 8, 16, int(a["vocab_size"])
text = 3 * (L * (2 * 4 * dd * dd + 2 * 3 * dd * f + 2 * s * dd) + 2 * dd * V)
image = text + 3 * (2 * P * dd + 2 * dd * dd + 2 * dd * P + L * 2 * dd * (n - 1))
# the FLOP column is tokens_by_input_modality x per-token cost; the costliest is the image token
print("# flops per token dense %.0f mot %.0f, hand count image %.0f (text %.0f)" % (fd, fm, image, text))
sys.exit(0 if fd == fm == image else 1)
PYEOF

# ---- (e) bad input ----------------------------------------------------------------------------
for bad in "data.modalities=text,speech data.mix=1,1:model.image_objective" "data.vocab_text=12:data.vocab_text"; do
    keys=${bad%%:*}
    key=${bad#*:}
    # shellcheck disable=SC2086
    expect_status 2 "bad input ($keys): exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad $keys
    check "... one line naming $key" sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q '$key' '$SCRATCH/last.out'"
done
check "... and nothing written" sh -c "[ ! -e '$SCRATCH/runs/bad' ]"

# ---- (f) token files -----------------------------------------------------------------------
"$MOTSCALE" data gen "$SCRATCH/base.ini" -o "$SCRATCH/img.h5" >"$SCRATCH/gen.out" 2>&1 &&
    run syn-eval 1 log.eval_every=10 log.eval_tokens=480 &&
    run file-eval 1 log.eval_every=10 log.eval_tokens=480 data.source=file data.path="$SCRATCH/img.h5" &&
    check "diffusion from a token file (data gen) = the synthetic run, bit for bit" \
        runcmp same "$SCRATCH/runs/syn-eval/run.h5" "$SCRATCH/runs/file-eval/run.h5" &&
    check "... and its held-out image metrics, bit for bit" $PY - "$SCRATCH/runs" <<'PYEOF'
import sys
import h5py
a, b = (h5py.File("%s/%s/run.h5" % (sys.argv[1], n), "r") for n in ("syn-eval", "file-eval"))
bad = [k for k in ("loss_by_modality", "image_loss_at_t", "caption_loss")
       if a["/eval/" + k][()].tobytes() != b["/eval/" + k][()].tobytes()]
print("# /eval rows %d; differing: %s" % (a["/eval/step"].shape[0], bad or "none"))
sys.exit(1 if bad or a["/eval/step"].shape[0] != 2 else 0)
PYEOF
$PY - "$SCRATCH" <<'PYEOF'
import shutil, sys
import h5py, numpy as np
d = sys.argv[1]
for name, what in (("nan", "patches"), ("kind", "kinds"), ("none", None)):
    shutil.copy(d + "/img.h5", "%s/bad-%s.h5" % (d, name))
    with h5py.File("%s/bad-%s.h5" % (d, name), "r+") as f:
        if what == "patches":
            x = f["/patches"][...]
            x[5, 2] = np.nan
            f["/patches"][...] = x
        elif what == "kinds":
            k = f["/kinds"][...]
            k[0] = 2  # window 0 starts with text: a patch kind there is wrong
            f["/kinds"][...] = k
        else:
            del f["/patches"], f["/kinds"]
PYEOF
for bad in "nan:/patches\[5, 2\]" "kind:/kinds\[0\]" "none:no /patches"; do
    name=${bad%%:*}
    msg=${bad#*:}
    expect_status 2 "token file with a bad image ($name): exit 2" "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad \
        data.source=file data.path="$SCRATCH/bad-$name.h5"
    check "... one line naming $msg" sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q '$msg' '$SCRATCH/last.out'"
done
expect_status 2 "the sampling check with a token file: exit 2 (it scores against the generator)" "$MOTSCALE" train \
    "$SCRATCH/base.ini" run.name=bad data.source=file data.path="$SCRATCH/img.h5" model.sample_steps=5
