# make bench cannot rot: bench/run --quick (one small size, two timed steps, one
# repetition, every bench script in its cheapest form) exits 0 and writes a JSON file
# in which every figure of issue 20 is there: a finite median inside its finite
# [min, max], except the analytic-minimum memory figures, which may be "n/a" while
# `motscale flops` prints no analytic minimum. The values themselves are not judged.
. tests/lib.sh

if ! $PY -c "import torch" 2>/dev/null; then
    not_ok "PyTorch for $PY (python3-torch; scripts/bootstrap installs it with MOTSCALE_WITH_TORCH=1)"
    exit 1
fi
BUILD=${BUILD:-build}
if ! [ -x "$BUILD/bench/bench_sgemm" ]; then
    not_ok "$BUILD/bench/bench_sgemm is built (make tests builds it)"
    exit 1
fi
TMPDIR=$SCRATCH timeout 300 sh bench/run --quick --out "$SCRATCH/bench.json" >"$SCRATCH/bench.out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then ok "bench/run --quick exits 0"; else
    not_ok "bench/run --quick exits 0 (exit $rc)"
    tail -8 "$SCRATCH/bench.out" | sed 's/^/# /'
fi

# the figures issue 20 asks for, by key; TRAIN once for the (one) quick training size
cat >"$SCRATCH/figures.py" <<'EOF'
import json, math, re, sys

TRAIN = ["motscale.tokens_per_s", "torch.tokens_per_s", "tokens_ratio", "motscale.model_flops",
         "torch.model_flops", "motscale.mfu", "torch.mfu", "motscale.peak_rss", "torch.peak_rss",
         "analytic_minimum", "rss_over_min", "rss_ratio"]
MAY_BE_NA = {"analytic_minimum", "rss_over_min"}
OTHER = ["sgemm.peak", "mot2.step_ratio", "mot3.step_ratio", "mot3.step_ratio.b32", "dp2.speedup", "tp2.speedup",
         "tp_backend.tp2", "tp_backend.tp4", "logging.share", "checkpoint.bandwidth", "data.read_share"]
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print("# bench.json unreadable: %s" % e)
    sys.exit(1)
figs = {f["key"]: f for f in doc["figures"]}
tags = sorted({k.split(".")[0] for k in figs if re.match(r"d\d+\.", k)})
want = OTHER + ["%s.%s" % (t, k) for t in tags for k in TRAIN]
bad = []
if len(tags) != 1:
    bad.append("training sizes in quick mode: %s (want one)" % tags)
for k in want:
    f = figs.get(k)
    if f is None:
        bad.append("%s: missing" % k)
        continue
    v, lo, hi = f["value"], f["min"], f["max"]
    if v is None and k.split(".", 1)[-1] in MAY_BE_NA and "n/a" in (f["note"] or ""):
        continue
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (v, lo, hi)):
        bad.append("%s: value %r min %r max %r not all finite numbers" % (k, v, lo, hi))
    elif not lo <= v <= hi:
        bad.append("%s: value %r outside [%r, %r]" % (k, v, lo, hi))
if doc.get("quick") is not True:
    bad.append("bench.json does not say it is a quick run")
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
EOF
check "bench.json holds every figure, each a finite median in [min, max]" $PY "$SCRATCH/figures.py" "$SCRATCH/bench.json"
