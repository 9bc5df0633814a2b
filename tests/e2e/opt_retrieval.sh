#!/bin/sh
# OPT retrieval learns (issue 16): the MoT d32 point of experiments/opt.ini (its
# config as it stands, seed 1, 2000 steps at dp = 2, a pool of 50 held-out scenes),
# trained, retrieves clearly above chance. Chance is the closed form k / pool (R@1
# 0.02, R@5 0.1, R@10 0.2); test_opt_retrieval shows a model at initialisation
# there. Measured: mean over the five directions R@5 0.38, R@10 0.64, and
# text+audio->image R@10 0.90; the thresholds are twice chance for the means. About
# 25 s on 2 cores. A learning outcome, not a memory check: skipped under
# AddressSanitizer, where the same code paths run in opt.sh and opt_file.sh.
. tests/lib.sh
if [ -n "${SANITIZE:-}" ]; then
    echo "ok 1 - # SKIP a 2000-step training run; its code paths run sanitized in opt.sh"
    exit 0
fi
# shellcheck disable=SC2086
$MPIRUN 2 "$MOTSCALE" train experiments/opt.ini opt.cross_towers=mot log.quiet=true \
    run.out_dir="$SCRATCH" run.name=mot >"$SCRATCH/mot.out" 2>&1
check "the trained MoT d32 OPT point completes" [ $? -eq 0 ]
check "its retrieval, last evaluation: mean R@5 and R@10 over the five directions at least twice chance" \
    $PY - "$SCRATCH/mot/run.h5" <<'PYEOF'
import sys
import h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
pool = 50
r = f["/eval/retrieval"][-1].reshape(5, 3)  # direction x (R@1, R@5, R@10)
chance = np.array([1, 5, 10]) / pool
print("# R@1, R@5, R@10 by direction:", r.round(3).tolist(), "chance", chance.tolist())
mean = r.mean(axis=0)
sys.exit(0 if mean[1] >= 2 * chance[1] and mean[2] >= 2 * chance[2] else 1)
PYEOF
