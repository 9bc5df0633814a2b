#!/bin/sh
# Zipper and its vocabulary-expansion baseline (issue 15; docs/model.md, "Zipper"),
# through the trainer, from two unimodal dense runs' checkpoints:
#  (a) the starting points: zipper with both backbones frozen ends with every
#      backbone tensor bit-identical to the dense run it came from (the tower's
#      vocabulary rows of the embedding and head), and its checkpoint holds no AdamW
#      moments for them; with the speech tower alone frozen the text backbone moves;
#      vocab_expansion at a learning rate of 1e-12 keeps the text run's rows
#      (within 1e-9) and its speech rows are the seeded draw; motscale flops counts
#      the checkpoint's parameters and the documented FLOPs;
#  (b) tp 2 and dp 2 against the one-rank run within TOL_F32_REORDER, every step;
#  (c) SIGUSR1 + resume at tp 2 = straight, bit for bit;
#  (d) bad input: one line, exit 2, no run directory;
#  (e) decoding (data.source = aligned tasks) from two aligned pretraining runs: the
#      record's decoding columns as documented (tests/check_schema.py), the error
#      rates equal to the per-pair errors over the reference lengths, overall and
#      by length, from step 0 on; decoding at tp 2 completes alike; the report's
#      error-rate tables and figures, and its
#      Wilcoxon row against scipy.stats.wilcoxon on the per-pair differences.
. tests/lib.sh

base_ini data.modalities=text,speech train.checkpoint_every=10 log.flush_every=5
PRE="model.kind=dense train.steps=10"
run ptext 1 $PRE data.mix=1,0 model.d_model=32 model.n_heads=4 model.d_ff=64
run pspeech 1 $PRE data.mix=0,1 model.d_model=16 model.n_heads=2 model.d_ff=32 model.n_layers=4
CT="$SCRATCH/runs/ptext/checkpoints/ckpt-000000010.h5"
CS="$SCRATCH/runs/pspeech/checkpoints/ckpt-000000010.h5"
Z="model.kind=zipper data.mix=1,1 zipper.text_d_model=32 zipper.text_n_heads=4 zipper.text_d_ff=64 \
zipper.speech_d_model=16 zipper.speech_n_heads=2 zipper.speech_d_ff=32 zipper.speech_n_layers=4 \
zipper.interval_speech=2 zipper.text_checkpoint=$CT zipper.speech_checkpoint=$CS"

# ---- (a) starting points and frozen backbones -----------------------------------------
# shellcheck disable=SC2086
run zboth 1 $Z zipper.freeze=both train.steps=10 && run zspeech 1 $Z zipper.freeze=speech train.steps=10 &&
    run vexp 1 model.kind=vocab_expansion zipper.text_checkpoint="$CT" model.d_model=32 model.n_heads=4 \
        model.d_ff=64 data.mix=1,1 train.steps=2 train.lr=1e-12 train.lr_min=0 &&
    check "frozen backbones bit-identical to their dense runs, no moments; vocab_expansion keeps the text rows" \
        $PY - "$SCRATCH/runs" "$CT" "$CS" <<'PYEOF'
import sys
import h5py, numpy as np
runs, ct, cs = sys.argv[1:4]
bad = []
src = {"text": h5py.File(ct, "r")["params"], "speech": h5py.File(cs, "r")["params"]}
rows = {"text": slice(0, 96), "speech": slice(96, 128)}
def ckpt(name): return h5py.File("%s/%s/checkpoints/ckpt-000000010.h5" % (runs, name), "r")
both, onlysp = ckpt("zboth"), ckpt("zspeech")
n = {"text": 0, "speech": 0}
for tw in ("text", "speech"):
    for key in src[tw]:
        name = "%s.%s" % (tw, key)
        want = src[tw][key][:]
        if key in ("embed", "head"):
            want = want[rows[tw]]
        if not np.array_equal(both["params"][name][:], want):
            bad.append("freeze=both: %s differs from the dense run's %s" % (name, key))
        if name in both["adam_m"] or name in both["adam_v"]:
            bad.append("freeze=both: %s has AdamW moments" % name)
        moved = not np.array_equal(onlysp["params"][name][:], want)
        if moved != (tw == "text"):
            bad.append("freeze=speech: %s %s" % (name, "moved" if moved else "did not move"))
        n[tw] += 1
fusion = [k for k in both["params"] if ".cross" in k or "input_mlp" in k]
if not fusion or any(k not in both["adam_m"] for k in fusion):
    bad.append("fusion tensors missing or without moments: %d" % len(fusion))
gates = [float(both["params"][k][0, 0]) for k in fusion if k.endswith("gate")]
if not gates or all(g == 0 for g in gates):
    bad.append("no gate moved from 0: %s" % gates)
v = h5py.File(runs + "/vexp/checkpoints/ckpt-000000002.h5", "r")["params"]
for key in src["text"]:
    got, want = v[key][:], src["text"][key][:]
    if key in ("embed", "head"):
        if np.abs(got[:96] - want[:96]).max() > 1e-9:
            bad.append("vocab_expansion %s: text rows moved from the text run's" % key)
        if np.abs(got[96:] - want[96:]).max() < 1e-6:
            bad.append("vocab_expansion %s: speech rows are the text run's, not the seeded draw" % key)
    elif np.abs(got - want).max() > 1e-9:
        bad.append("vocab_expansion %s differs from the text run's" % key)
for x in bad:
    print("#", x)
print("# %d text and %d speech backbone tensors checked; %d fusion tensors, gates %s" %
      (n["text"], n["speech"], len(fusion), np.round(gates[:4], 5)))
sys.exit(1 if bad else 0)
PYEOF

# motscale flops: the parameters against the checkpoint's tensors, the FLOPs per token
# of each tower against a hand count of docs/model.md's terms
# shellcheck disable=SC2086
"$MOTSCALE" flops "$SCRATCH/base.ini" $Z >"$SCRATCH/flops.out" 2>&1
check "motscale flops: parameters = the checkpoint's tensors; FLOPs per token by hand" \
    $PY - "$SCRATCH/flops.out" "$SCRATCH/runs/zboth/checkpoints/ckpt-000000010.h5" <<'PYEOF'
import re, sys
import h5py
out, bad = open(sys.argv[1]).read(), []
n = sum(d.size for d in h5py.File(sys.argv[2], "r")["params"].values())
total = int(re.search(r"^  total +(\d+)", out, re.M).group(1))
if total != n:
    bad.append("params total %d, the checkpoint holds %d" % (total, n))
# text d 32 f 64 L 2 V 96, speech d 16 f 32 L 4 V 32, K = 2 blocks each, s = 16
def fwd(d, f, L, V, e, K, s=16):
    return L * (8 * d * d + 6 * d * f) + 4 * d * d + K * (4 * d * d + 6 * d * f) + K * (2 * e * d + 4 * e * e) \
        + (L + K) * 2 * s * d + 2 * d * V
want = 3 * max(fwd(32, 64, 2, 96, 16, 2), fwd(16, 32, 4, 32, 32, 2))
train = float(re.search(r"^  train +([\d.e+]+)", out, re.M).group(1))
if abs(train - want) > 0.5:
    bad.append("train FLOPs per token %g, by hand %g" % (train, want))
for x in bad:
    print("#", x)
print("# %d parameters; %g training FLOPs per token (the costlier tower)" % (n, want))
sys.exit(1 if bad else 0)
PYEOF

# ---- (b) layouts -------------------------------------------------------------------------
# shellcheck disable=SC2086
run z1 1 $Z zipper.freeze=speech
for layout in "tp2:2:parallel.tp=2" "dp2:2:parallel.dp=2"; do
    lay=${layout%%:*}
    rest=${layout#*:}
    np=${rest%%:*}
    keys=${rest#*:}
    # shellcheck disable=SC2086
    run "z-$lay" "$np" $Z zipper.freeze=speech $keys &&
        check "zipper $lay ($keys) = one rank within $TOL_F32_REORDER, every step" \
            runcmp close "$SCRATCH/runs/z1/run.h5" "$SCRATCH/runs/z-$lay/run.h5" --tol "$TOL_F32_REORDER"
done

# ---- (c) SIGUSR1 + resume -----------------------------------------------------------------
# the held-out evaluation after step 20 is the pause in which the shell signals
EP="$Z parallel.tp=2 train.steps=40 log.eval_every=20 log.eval_tokens=24000 log.quiet=false"
# shellcheck disable=SC2086
sigusr1_resume zr 2 $EP &&
    check "zipper tp 2: SIGUSR1 (exit 75) + resume = straight, bit for bit" \
        runcmp same "$SCRATCH/runs/zr-straight/run.h5" "$SCRATCH/runs/zr-usr1/run.h5"

# ---- (d) bad input ---------------------------------------------------------------------------
# shellcheck disable=SC2086
expect_status 2 "a missing text checkpoint: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad1 $Z zipper.text_checkpoint="$SCRATCH/none.h5"
check "... one line naming the file, no run directory" \
    sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q none.h5 '$SCRATCH/last.out' && [ ! -e '$SCRATCH/runs/bad1' ]"
# shellcheck disable=SC2086
expect_status 2 "the speech run's checkpoint as the text one (another width): exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad2 $Z zipper.text_checkpoint="$CS"
check "... one line naming the dataset" sh -c "[ \$(wc -l <'$SCRATCH/last.out') -eq 1 ] && grep -q 'params/' '$SCRATCH/last.out'"
expect_status 2 "zipper over text,image: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad3 model.kind=zipper data.modalities=text,image
expect_status 2 "zipper.interval_speech not dividing its layers: exit 2" \
    "$MOTSCALE" train "$SCRATCH/base.ini" run.name=bad4 model.kind=zipper zipper.interval_speech=3

# ---- (e) decoding --------------------------------------------------------------------------
base_ini data.modalities=text,speech data.source=aligned model.seq_len=48 data.aligned_words=4 \
    data.aligned_heldout=8 data.vocab_text=20 data.vocab_speech=19 train.steps=40 train.checkpoint_every=40 \
    train.lr=1e-2 log.eval_every=20 log.eval_tokens=256 run.out_dir="$SCRATCH/dec"
run atext 1 model.kind=dense data.aligned_stream=text model.d_model=16 model.n_heads=2 model.d_ff=32 &&
    run aspeech 1 model.kind=dense data.aligned_stream=speech model.d_model=8 model.n_heads=2 model.d_ff=16
AT="$SCRATCH/dec/atext/checkpoints/ckpt-000000040.h5"
AS="$SCRATCH/dec/aspeech/checkpoints/ckpt-000000040.h5"
# shellcheck disable=SC2086
run dzip 1 model.kind=zipper zipper.freeze=text zipper.text_d_model=16 zipper.text_n_heads=2 zipper.text_d_ff=32 \
    zipper.speech_d_model=8 zipper.speech_n_heads=2 zipper.speech_d_ff=16 zipper.text_checkpoint="$AT" \
    zipper.speech_checkpoint="$AS" run.out_dir="$SCRATCH/dec/fusion" &&
    run dvexp 1 model.kind=vocab_expansion model.d_model=16 model.n_heads=2 model.d_ff=32 \
        zipper.text_checkpoint="$AT" run.out_dir="$SCRATCH/dec/fusion" &&
    check "a decoding run holds every documented object (tests/check_schema.py)" \
        $PY tests/check_schema.py docs/run-record.md "$SCRATCH/dec/fusion/dzip/run.h5" "" &&
    check "error rates = errors / reference lengths, overall and by length, at steps 0, 20, 40" \
        $PY - "$SCRATCH/dec/fusion" "$TOL_RATE_REL" <<'PYEOF'
import sys
import h5py, numpy as np
bad, tol = [], float(sys.argv[2])
for name in ("dzip", "dvexp"):
    e = h5py.File("%s/%s/run.h5" % (sys.argv[1], name), "r")["/eval"]
    if list(e["step"][:]) != [0, 20, 40]:
        bad.append("%s: /eval/step %s" % (name, e["step"][:]))
    words = e["asr_ref_len"][:]
    bucket = np.where(words <= 2, 0, np.where(words <= 5, 1, 2))
    for task, rate, by in (("asr", "asr_wer", "asr_wer_by_length"), ("tts", "tts_uer", "tts_uer_by_length")):
        err, ref = e[task + "_errors"][:], e[task + "_ref_len"][:]
        if (err < 0).any() or (ref < 1).any():
            bad.append("%s %s: errors %s refs %s" % (name, task, err[0], ref[0]))
        want = err.sum(axis=1) / ref.sum(axis=1)
        if not np.allclose(e[rate][:], want, rtol=tol, atol=0):
            bad.append("%s %s: %s, errors / references give %s" % (name, rate, e[rate][:], want))
        for b in range(3):
            m = bucket == b
            w = np.where(m.any(axis=1), (err * m).sum(axis=1) / np.maximum((ref * m).sum(axis=1), 1), np.nan)
            if not np.allclose(e[by][:, b], w, rtol=tol, atol=0, equal_nan=True):
                bad.append("%s %s bucket %d: %s vs %s" % (name, by, b, e[by][:, b], w))
    if not np.all(np.isfinite(e["text_only_loss"][:])):
        bad.append("%s: text_only_loss %s" % (name, e["text_only_loss"][:]))
for x in bad:
    print("#", x)
print("# dzip ASR WER by evaluation", h5py.File(sys.argv[1] + "/dzip/run.h5", "r")["/eval/asr_wer"][:])
sys.exit(1 if bad else 0)
PYEOF
# decoding under tensor parallelism: every TP rank decodes the same tokens (the logits
# are replicated after the all-reduce), so the run completes with the same rows
# shellcheck disable=SC2086
run dzip-tp2 2 model.kind=zipper zipper.freeze=text zipper.text_d_model=16 zipper.text_n_heads=2 \
    zipper.text_d_ff=32 zipper.speech_d_model=8 zipper.speech_n_heads=2 zipper.speech_d_ff=16 \
    zipper.text_checkpoint="$AT" zipper.speech_checkpoint="$AS" parallel.tp=2 run.out_dir="$SCRATCH/dec/tp2" &&
    check "decoding at tp 2: the same evaluation rows, error rates within a few sentences of tp 1" \
        $PY - "$SCRATCH/dec" "$TOL_DECODE_TP_SAME" <<'PYEOF'
import sys
import h5py, numpy as np
a = h5py.File(sys.argv[1] + "/fusion/dzip/run.h5", "r")["/eval"]
b = h5py.File(sys.argv[1] + "/tp2/dzip-tp2/run.h5", "r")["/eval"]
ok = list(a["step"][:]) == list(b["step"][:]) and a["asr_errors"].shape == b["asr_errors"].shape
# an argmax may flip where two logits nearly tie (fp32 reordering; tests/tolerances.env)
same = (a["asr_errors"][:] == b["asr_errors"][:]).mean(), (a["tts_errors"][:] == b["tts_errors"][:]).mean()
print("# tp 2 against tp 1: steps %s, share of identical per-pair errors ASR %.2f TTS %.2f" % (b["step"][:], *same))
sys.exit(0 if ok and min(same) >= float(sys.argv[2]) else 1)
PYEOF
"$MOTSCALE" report "$SCRATCH/dec/fusion" --out "$SCRATCH/dec/report" >"$SCRATCH/dec-report.out" 2>&1
check "report: error-rate and length tables, two figures, and the Wilcoxon row = scipy's" \
    $PY - "$SCRATCH/dec" "$TOL_REPORT_3SIG" "$TOL_REPORT_3DEC" <<'PYEOF'
import os, re, sys, warnings
import h5py, numpy as np
from scipy.stats import wilcoxon
warnings.simplefilter("ignore")  # scipy: "sample size too small for normal approximation"
d, bad = sys.argv[1], []
sig3, dec3 = float(sys.argv[2]), float(sys.argv[3])
md = open(d + "/report/report.md").read()
for head in ("### Error rates against the aligned fraction", "### Error rates by sentence length",
             "### Paired per-sentence differences against vocab_expansion"):
    if head not in md:
        bad.append("no section " + head)
for fig in ("asr_wer_vs_fraction", "tts_uer_vs_fraction"):
    if not [f for f in os.listdir(d + "/report") if f.endswith(fig + ".png") and os.path.getsize(d + "/report/" + f) > 0]:
        bad.append("no figure " + fig)
z = h5py.File(d + "/fusion/dzip/run.h5", "r")["/eval"]
v = h5py.File(d + "/fusion/dvexp/run.h5", "r")["/eval"]
for task in ("ASR", "TTS"):
    k = task.lower() + "_errors"
    diff = (z[k][-1] - v[k][-1]).astype(float)
    row = re.search(r"\| zipper, text frozen \| 1 \| %s \| (\d+) \| (\d+) \| ([-+.\d]+) \| ([-.\d]+) \| ([-.\d]+) \| ([-.\d]+) \| ([-.\de+]+) \|" % task, md)
    if not row:
        bad.append("no %s row for zipper, text frozen" % task)
        continue
    n, nz, mean = int(row.group(1)), int(row.group(2)), float(row.group(3))
    wp, wm = (float(row.group(4)), float(row.group(5))) if nz else (np.nan, np.nan)
    if n != len(diff) or nz != int((diff != 0).sum()) or abs(mean - diff.mean()) > dec3:
        bad.append("%s: n %d nonzero %d mean %g vs %d %d %g" % (task, n, nz, mean, len(diff), (diff != 0).sum(), diff.mean()))
    if nz > 0:
        r = wilcoxon(diff, zero_method="wilcox", correction=True, mode="approx")
        p = float(row.group(7))
        if min(wp, wm) != r.statistic or not (abs(p - r.pvalue) <= sig3 * max(r.pvalue, 1e-300)):
            bad.append("%s: W+ %g W- %g p %g, scipy statistic %g p %g" % (task, wp, wm, p, r.statistic, r.pvalue))
        print("# %s: %d pairs, %d nonzero, report p %s, scipy p %.4g" % (task, n, nz, row.group(7), r.pvalue))
for x in bad:
    print("#", x)
sys.exit(1 if bad else 0)
PYEOF
echo "1..$TAPN"
