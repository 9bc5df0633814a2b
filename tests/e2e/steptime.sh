#!/bin/sh
# motscale steptime: paired bursts of two configurations in one process tree.
# Identical configurations give the median and sign-test interval of the pairs they
# print, within a factor 1.5 of 1; dense vs mot is within a factor 1.5 of the two
# trained runs' median step-time ratio when the machine is quiet (skipped, and said
# so, when other work loads it); compare --steptime states the wall-clock fraction as
# FLOPs slope x that ratio; bad input exits 2. How well the intervals cover is
# measured by bench/bench_steptime.sh, not here.
. tests/lib.sh

cp tests/fixtures/steptime.ini "$SCRATCH/dense.ini"
sed 's/^size = xs/kind = mot\nsize = xs/' "$SCRATCH/dense.ini" >"$SCRATCH/mot.ini"

expect_status 0 "steptime --help" "$MOTSCALE" steptime --help
expect_status 2 "steptime: one configuration is not a pair" "$MOTSCALE" steptime "$SCRATCH/dense.ini"
expect_status 2 "steptime: a bad count exits 2" "$MOTSCALE" steptime "$SCRATCH/dense.ini" \
    "$SCRATCH/mot.ini" --pairs x
check "steptime: that message is one line" [ "$(wc -l <"$SCRATCH/last.out")" -eq 1 ]
expect_status 2 "steptime: a bad configuration exits 2 before any burst" "$MOTSCALE" steptime \
    "$SCRATCH/dense.ini" "$SCRATCH/mot.ini" model.d_modl=3

# Identical configurations. Whether the interval holds 1.00 is a property of the
# machine's noise as much as of the tool (on a shared machine a neighbour can slow
# every B burst of a run: CI saw [1.012, 1.224] and [1.018, 1.157] in a row), so it is
# measured by bench/bench_steptime.sh, not asserted here. What is asserted: the summary
# is the stated function of the pairs it printed (median of the six r_i, sign-test
# interval [min, max] at 96.9%), the INI result says the same, and identical
# configurations give a ratio within a factor 1.5 of 1 (a burst of the wrong
# configuration, length or rank count would leave it).
"$MOTSCALE" steptime "$SCRATCH/dense.ini" "$SCRATCH/dense.ini" --np 1 --pairs 6 --steps 12 \
    --out "$SCRATCH/same.ini" >"$SCRATCH/same.out" 2>"$SCRATCH/same.err"
check "steptime: identical configurations ran" [ -s "$SCRATCH/same.ini" ]
same() {
    $PY - "$SCRATCH" <<'EOF'
import configparser, re, statistics, sys
d = sys.argv[1]
out = open(f"{d}/same.out").read()
r = sorted(float(x) for x in re.findall(r"^  pair \d+: .* ratio ([0-9.]+)$", out, re.M))
m = re.search(r"^ratio B/A: ([0-9.]+) \[([0-9.]+), ([0-9.]+)\] \((.*)\)$", out, re.M)
ini = configparser.ConfigParser()
ini.read(f"{d}/same.ini")
st = ini["steptime"]
got = [float(st[k]) for k in ("ratio", "lo", "hi")]
want = [statistics.median(r), r[0], r[-1]] if len(r) == 6 else []
print(f"# identical: pairs {r}; ratio {got[0]:.4f} [{got[1]:.4f}, {got[2]:.4f}]")
ok = (len(r) == 6 and m is not None and "sign-test" in m.group(4) and "96.9%" in m.group(4)
      and len(want) == 3 and all(abs(g - w) <= 1.5e-4 for g, w in zip(got, want))
      and all(abs(float(m.group(i + 1)) - g) <= 1e-4 for i, g in enumerate(got))
      and 1 / 1.5 < got[0] < 1.5 and int(st["pairs"]) == 6)
sys.exit(0 if ok else 1)
EOF
}
check "steptime: the ratio is the median of the printed pairs, the interval their [min, max], within 1.5 of 1" same

# dense vs mot against the two trained runs' median step times
for k in dense mot; do
    timeout 300 "$MOTSCALE" train "$SCRATCH/$k.ini" run.out_dir="$SCRATCH/runs" run.name=$k \
        train.steps=80 log.every=1 log.quiet=true >"$SCRATCH/$k.out" 2>&1 || not_ok "train $k"
done
load=$(cut -d' ' -f1 /proc/loadavg)
"$MOTSCALE" steptime "$SCRATCH/dense.ini" "$SCRATCH/mot.ini" --np 1 --pairs 6 --steps 40 \
    --out "$SCRATCH/st.ini" --json >"$SCRATCH/st.json" 2>"$SCRATCH/st.err"
check "steptime dense vs mot ran and wrote its result" [ -s "$SCRATCH/st.ini" ]
agree() {
    $PY - "$SCRATCH" "$load" <<'EOF'
import json, sys
import h5py, numpy as np
d, load = sys.argv[1], float(sys.argv[2])
r = json.load(open(f"{d}/st.json"))["ratio"]
med = [np.median(h5py.File(f"{d}/runs/{k}/run.h5")["metrics/step_time"][5:]) for k in ("dense", "mot")]
trained = med[1] / med[0]
print(f"# steptime mot/dense {r['value']:.4f} [{r['lo']:.4f}, {r['hi']:.4f}]; trained runs {trained:.4f}; load {load}")
# The trained runs are one sample each, run one after the other: how closely they
# agree is measured by bench/bench_steptime.sh (seen here: 0.96 against 1.11 on a
# quiet machine). Asserted: within a factor 1.5, or inside the interval.
ok = 1 / 1.5 < trained / r["value"] < 1.5 or r["lo"] <= trained <= r["hi"]
sys.exit(0 if ok else 1)
EOF
}
# A 1-minute load average above 3/4 of the cores (this test's own bursts count up to 1)
# means other work shares them:
# then two runs trained one after the other see different load and their ratio says
# as much about the machine as about the models (what steptime exists for).
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l <= 0.75 * c) }'; then
    check "steptime dense vs mot within 1.5 of the trained runs' step-time ratio (quiet machine, load $load)" agree
else
    agree >/dev/null 2>&1
    ok "steptime dense vs mot against the trained runs # skip machine not quiet (load average $load)"
    agree | sed 's/^/# /'
fi
"$MOTSCALE" compare "$SCRATCH/runs/dense/run.h5" "$SCRATCH/runs/mot/run.h5" --steptime "$SCRATCH/st.ini" \
    --json >"$SCRATCH/cmp.json" 2>/dev/null
paired() {
    $PY - "$SCRATCH" <<'EOF'
import json, sys
d = sys.argv[1]
c = json.load(open(f"{d}/cmp.json"))["comparisons"][0]
r = json.load(open(f"{d}/st.json"))["ratio"]["value"]
bad = []
for s in c["series"]:
    sm = s["step_matching"]
    p, f = sm["wall_clock_paired"], sm["flops"]["value"]
    if f is not None and (p["value"] is None or abs(p["value"] / (f * r) - 1) > 1e-6
                          or "paired step-time ratio" not in p["method"]):
        bad.append(f"{s['name']}: paired {p} vs FLOPs slope {f} x ratio {r}")
for b in bad:
    print("#", b)
sys.exit(1 if bad else 0)
EOF
}
check "compare --steptime: wall-clock (paired) = FLOPs slope x the paired ratio, method named" paired
printf '[steptime]\nratio = x\n' >"$SCRATCH/bad.ini"
expect_status 2 "compare --steptime: a file that is no steptime result exits 2" "$MOTSCALE" compare \
    "$SCRATCH/runs/dense/run.h5" "$SCRATCH/runs/mot/run.h5" --steptime "$SCRATCH/bad.ini"
