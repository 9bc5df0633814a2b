#!/bin/sh
# motscale compare and report on synthetic run files with known answers (written
# here with h5py in the run-record layout): dense, mot and towers runs at three
# sizes. mot's curves are dense's stretched in steps (image by 0.3, text by 0.6) at a
# step time 1.25x dense's; towers never reaches dense's final loss. Checks: the
# slopes and fractions, JSON = table, "not reached" is null, every figure is a valid
# PNG or SVG referenced from report.md, and bad input exits 2.
. tests/lib.sh

RES=$SCRATCH/results
mkdir -p "$RES"
$PY - "$RES" <<'EOF'
import os, sys
import h5py
import numpy as np

res = sys.argv[1]
mods = ["text", "image"]
stretch = {"dense": [1.0, 1.0], "mot": [0.6, 0.3], "towers": [1.0, 1.0]}
offset = {"dense": 0.0, "mot": 0.0, "towers": 0.3}
step_time = {"dense": 1.0, "mot": 1.25, "towers": 1.1}
sizes = [(64, 2), (128, 4), (256, 8)]
steps = np.arange(10, 1001, 10, dtype=np.int64)
tps = 4096
rng = np.random.default_rng(7)

def loss(m, t, n_params):
    # Chinchilla-like: E + A N^-a + B D^-b, D the tokens seen by step t
    E, A, B = [(2.0, 40.0, 40.0), (3.0, 30.0, 50.0)][m]
    return E + A * n_params ** -0.34 + B * (t * tps) ** -0.28

for (d, L) in sizes:
    params = 12 * L * d * d + 2 * 512 * d
    for kind in ["dense", "mot", "towers"]:
        if kind == "towers" and d != 64:
            continue
        name = f"{kind}-d{d}"
        os.makedirs(f"{res}/exp1/{name}", exist_ok=True)
        with h5py.File(f"{res}/exp1/{name}/run.h5", "w", libver="latest") as f:
            cfg = (f"[run]\nname = {name}\nseed = 1\n[model]\nkind = {kind}\n"
                   f"[data]\nsource = synthetic\nmodalities = text,image\n[train]\nsteps = 1000\n")
            f.attrs["schema_version"] = np.int32(1)
            f.attrs["config"] = cfg
            f.attrs["experiment"] = "exp1"
            f.attrs["run_name"] = name
            for k in ["world_size", "dp"]:
                f.attrs[k] = np.int32(2)
            f.attrs["tp"] = np.int32(1)
            f.attrs["tp_backend"] = "megatron"
            f.attrs["peak_flops_per_rank"] = 1e11
            m = f.create_group("model")
            m.attrs["kind"] = kind
            for k, v in [("d_model", d), ("n_layers", L), ("n_heads", 4), ("d_ff", 4 * d),
                         ("seq_len", 128), ("vocab_size", 512),
                         ("n_towers", 1 if kind == "dense" else 2)]:
                m.attrs[k] = np.int32(v)
            m.attrs.create("modality_names", mods, dtype=h5py.string_dtype())
            m.attrs["tower_of"] = np.array([0, 0] if kind == "dense" else [0, 1], np.int32)
            m.attrs["params_total"] = np.int64(params * (1 if kind == "dense" else 2))
            m.attrs["params_active_per_token"] = np.int64(params)
            fpt = 6.0 * params
            m.attrs["flops_per_token"] = fpt
            g = f.create_group("metrics")
            by = np.stack([loss(i, steps / stretch[kind][i], params) + offset[kind]
                           for i in range(2)], axis=1)
            by *= 1 + 0.002 * rng.standard_normal(by.shape)
            st = np.full(steps.shape, step_time[kind] * d / 64)
            g["step"] = steps
            g["tokens"] = steps * tps
            g["flops"] = steps * tps * fpt
            g["gemm_flops"] = steps * tps * fpt
            g["wall_time"] = steps * st
            g["loss"] = by.mean(axis=1)
            g["lr"] = np.full(steps.shape, 1e-3)
            g["grad_norm"] = np.ones(steps.shape)
            g["step_time"] = st
            g["compute_time"] = 0.7 * st
            g["comm_time"] = 0.2 * st
            g["io_time"] = 0.02 * st
            g["loss_by_modality"] = by
            g["tokens_by_modality"] = np.full(by.shape, tps // 2, np.int64)
            e = f.create_group("eval")
            es = steps[9::10]
            eb = np.stack([loss(i, es / stretch[kind][i], params) + offset[kind]
                           for i in range(2)], axis=1)
            e["step"] = es
            e["flops"] = es * tps * fpt
            e["wall_time"] = es * step_time[kind] * d / 64
            e["loss"] = eb.mean(axis=1)
            e["loss_by_modality"] = eb
            r = f.create_group("ranks")
            r["step_time"] = np.stack([st, st], axis=1)
            r["comm_time"] = np.stack([0.2 * st, 0.2 * st], axis=1)
# a broken run: no /metrics/loss
with h5py.File(f"{res}/broken.h5", "w") as f:
    f.attrs["schema_version"] = np.int32(1)
EOF
check "synthetic run files written" test -f "$RES/exp1/mot-d256/run.h5"

BASE=$RES/exp1/dense-d128/run.h5
CAND=$RES/exp1/mot-d128/run.h5
TOW=$RES/exp1/towers-d64/run.h5
"$MOTSCALE" compare "$BASE" "$CAND" >"$SCRATCH/table.txt" 2>"$SCRATCH/table.err"
check "compare prints a table" test -s "$SCRATCH/table.txt"
"$MOTSCALE" compare "$BASE" "$CAND" --json >"$SCRATCH/cmp.json" 2>/dev/null
"$MOTSCALE" compare "$RES/exp1/dense-d64/run.h5" "$TOW" --json >"$SCRATCH/tow.json" 2>/dev/null
"$MOTSCALE" compare "$RES/exp1/dense-d64/run.h5" "$TOW" >"$SCRATCH/tow.txt" 2>/dev/null
"$MOTSCALE" compare "$BASE" "$CAND" --metric eval --json >"$SCRATCH/eval.json" 2>/dev/null

# Known answers: mot's image curve is dense's stretched by 0.3, text by 0.6; wall-clock
# fractions are 1.25x those; the JSON numbers are the table's, rounded as printed.
check_numbers() {
    $PY - "$SCRATCH" <<'EOF'
import json, re, sys
d = sys.argv[1]
j = json.load(open(f"{d}/cmp.json"))
s = {x["name"]: x for x in j["series"]}
want = {"image": 0.3, "text": 0.6}
bad = []
for name, w in want.items():
    sm = s[name]["step_matching"]
    if abs(sm["steps"]["slope"] / w - 1) > 0.02:
        bad.append(f"{name} step slope {sm['steps']['slope']} vs {w}")
    if abs(sm["wall_clock"]["slope"] / (1.25 * sm["steps"]["slope"]) - 1) > 1e-9:
        bad.append(f"{name} wall slope {sm['wall_clock']['slope']} not 1.25 x step slope")
    el = s[name]["equal_loss"]
    if not el["reached"] or abs(el["fraction_steps"] / w - 1) > 0.02:
        bad.append(f"{name} equal-loss fraction {el['fraction_steps']} vs {w}")
table = open(f"{d}/table.txt").read()
for name, x in s.items():
    sm = x["step_matching"]
    row = re.search(rf"^{name}\s+(\d+)/(\d+)\s+(\S+) \((\S+)\)\s+(\S+) \((\S+)\)\s+(\S+) \((\S+)\)",
                    table, re.M)
    if not row:
        bad.append(f"no step-matching row for {name}")
        continue
    got = row.groups()
    exp = (str(x["n_matched"]), str(x["n_baseline"]),
           f"{sm['steps']['slope']:.3f}", f"{sm['steps']['r2']:.3f}",
           f"{sm['flops']['slope']:.3f}", f"{sm['flops']['r2']:.3f}",
           f"{sm['wall_clock']['slope']:.3f}", f"{sm['wall_clock']['r2']:.3f}")
    if got != exp:
        bad.append(f"{name}: table {got} vs json {exp}")
    el = x["equal_loss"]
    row = re.search(rf"^{name}\s+(\S+)\s+(\S+)%\s+(\S+)%\s+(\S+)%\s*$", table, re.M)
    exp = (f"{el['target_loss']:.4f}", f"{100 * el['fraction_steps']:.1f}",
           f"{100 * el['fraction_flops']:.1f}", f"{100 * el['fraction_wall_clock']:.1f}")
    if not row or row.groups() != exp:
        bad.append(f"{name}: equal-loss row {row.groups() if row else None} vs json {exp}")
    if not re.search(rf"^headline: mot reaches dense's final {name} training loss "
                     rf"\({el['target_loss']:.4f}\) with {100 * el['fraction_flops']:.1f}% "
                     rf"of the FLOPs, {100 * el['fraction_wall_clock']:.1f}% of the wall-clock$",
                     table, re.M):
        bad.append(f"{name}: headline line missing or different from the JSON")
e = json.load(open(f"{d}/eval.json"))
for x in e["series"]:
    if x["name"] in want and abs(x["step_matching"]["steps"]["slope"] / want[x["name"]] - 1) > 0.05:
        bad.append(f"eval {x['name']} slope {x['step_matching']['steps']['slope']}")
for b in bad:
    print("#", b)
sys.exit(1 if bad else 0)
EOF
}
check "compare: slopes 0.3/0.6, wall = 1.25 x steps, JSON numbers = table" check_numbers

check_not_reached() {
    $PY - "$SCRATCH" <<'EOF'
import json, re, sys
d = sys.argv[1]
j = json.load(open(f"{d}/tow.json"))
table = open(f"{d}/tow.txt").read()
ok = True
for x in j["series"]:
    el = x["equal_loss"]
    nulls = [k for k in ("steps", "flops", "wall_clock_s", "fraction_steps", "fraction_flops",
                         "fraction_wall_clock") if el[k] is not None]
    if el["reached"] is not False or nulls:
        print("#", x["name"], "reached", el["reached"], "numbers where none should be:", nulls)
        ok = False
    if not re.search(rf"^{x['name']}\s+\S+\s+not reached\s*$", table, re.M):
        print("#", x["name"], "table row does not say 'not reached'")
        ok = False
sys.exit(0 if ok else 1)
EOF
}
check "compare: a candidate that never gets there is 'not reached', JSON null" check_not_reached

expect_status 2 "compare: a missing file exits 2" "$MOTSCALE" compare "$BASE" "$SCRATCH/nope.h5"
expect_status 2 "compare: a malformed run file exits 2" "$MOTSCALE" compare "$BASE" "$RES/broken.h5"
check "compare: the message names the file and the object" \
    grep -q "broken.h5: /@config: missing" "$SCRATCH/last.out"
echo "not hdf5" >"$SCRATCH/text.h5"
expect_status 2 "compare: a non-HDF5 file exits 2" "$MOTSCALE" compare "$SCRATCH/text.h5" "$BASE"
expect_status 2 "compare: a bad option exits 2" "$MOTSCALE" compare "$BASE" "$CAND" --smooth x
mkdir -p "$SCRATCH/empty"
expect_status 2 "report: a folder without runs exits 2" "$MOTSCALE" report "$SCRATCH/empty"

OUT=$SCRATCH/report
expect_status 0 "report renders" "$MOTSCALE" report "$RES" --out "$OUT"
check "report.md written" test -s "$OUT/report.md"

check_figures() {
    $PY - "$OUT" <<'EOF'
import os, re, sys
import xml.etree.ElementTree as ET
out = sys.argv[1]
md = open(f"{out}/report.md").read()
refs = set(re.findall(r"\]\(([^)]+\.(?:png|svg))\)", md))
figs = sorted(f for f in os.listdir(out) if f.endswith((".png", ".svg")))
bad = []
for f in figs:
    p = f"{out}/{f}"
    if f not in refs:
        bad.append(f"{f} not referenced from report.md")
    if f.endswith(".png"):
        if open(p, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
            bad.append(f"{f} is not a PNG")
    else:
        try:
            if not ET.parse(p).getroot().tag.endswith("svg"):
                bad.append(f"{f}: root is not <svg>")
        except ET.ParseError as e:
            bad.append(f"{f}: {e}")
    gp = open(p[:-4] + ".gp").read()
    for must in ("set title", "set xlabel", "set ylabel", " title '"):
        if must not in gp:
            bad.append(f"{f}: script lacks {must.strip()}")
    if not re.search(r"set [xy]label '[^']*\([^)]+\)'", gp):
        bad.append(f"{f}: no axis label with units")
for r in refs:
    if not os.path.exists(f"{out}/{r}"):
        bad.append(f"report.md references missing {r}")
kinds = {"loss_vs_flops": 6, "loss_vs_wallclock": 6, "stepmatch": 18, "flops_vs_wallclock": 8,
         "step_time": 2, "slope_vs_size": 2, "scaling": 6}
for k, n in kinds.items():
    got = len([f for f in figs if k in f])
    if got < n:
        bad.append(f"{got} {k} figure files, wanted {n}")
for must in ("not reached", "Scaling fits", "compute of mot", "MFU"):
    if must not in md:
        bad.append(f"report.md lacks '{must}'")
for b in bad:
    print("#", b)
print(f"# {len(figs)} figure files checked")
sys.exit(1 if bad or not figs else 0)
EOF
}
check "report: every figure a valid PNG/SVG with title, labels, legend, referenced" check_figures
