#!/bin/sh
# The experiment files say what they cost and run enough seeds; jobs/local runs a
# subset of points, prints an ETA, and links a point whose configuration equals a
# completed run elsewhere under the results folder instead of training it again.
#   - every experiments/*.ini: each kind and grouping at its smallest size runs >= 3
#     seeds of one configuration (horizontal.ini: at dp 1; dp 2 and 4 run one each);
#     its header's "; time: about N min" is within 2x of its own step-time estimate,
#     the sum over its points of train.steps x the header's "; step time ...: SIZE
#     SECONDS s, ..." for the point's size (every size it runs has one);
#   - jobs/local --points 0,2-3 on a tiny experiment runs exactly those points, with
#     an estimate before and an ETA after each; bad lists exit 2;
#   - a second experiment with the same training configurations links the completed
#     points (run.h5 a link, reused-from, status completed), trains the others, and
#     compare --dir reads the linked runs under the second experiment's names.
. tests/lib.sh

check_files() {
    for f in experiments/*.ini; do
        "$MOTSCALE" sweep "$f" --count >/dev/null || { echo "# $f: sweep fails"; return 1; }
        n=$("$MOTSCALE" sweep "$f" --count)
        for i in $(seq 0 $((n - 1))); do
            "$MOTSCALE" sweep "$f" --index "$i" >"$SCRATCH/$(basename "$f" .ini)-$i.ini" || return 1
        done
    done
    $PY - "$SCRATCH" experiments/*.ini <<'EOF'
import glob, os, re, sys
scratch, files = sys.argv[1], sys.argv[2:]
bad = []
def resolved(path):
    s, kv = "", {}
    for line in open(path):
        m = re.match(r"^; size = ([A-Za-z0-9_.-]+)", line)
        if m:
            kv["model.size"] = m.group(1)
        if line.startswith("["):
            s = line.strip()[1:-1]
        elif " = " in line and not line.startswith(";"):
            k, v = line.rstrip("\n").split(" = ", 1)
            kv[f"{s}.{k}"] = v
    return kv
for f in files:
    stem = os.path.basename(f)[:-4]
    head = [l for l in open(f) if l.startswith(";")]
    st = [l for l in head if re.match(r"^; *step time", l)]
    tm = [l for l in head if re.match(r"^; *time: ", l)]
    if len(st) != 1 or len(tm) != 1:
        bad.append(f"{f}: wants one '; step time ...:' and one '; time: ' line in its header")
        continue
    step = {w[0]: float(w[1]) for w in (p.split() for p in st[0].split(":", 1)[1].split(","))}
    m = re.search(r"about ([0-9.]+) (s|min|h)\b", tm[0])
    if not m:
        bad.append(f"{f}: '{tm[0].strip()}' gives no 'about N s|min|h'")
        continue
    claim = float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]
    points = [resolved(p) for p in sorted(glob.glob(f"{scratch}/{stem}-*.ini"))]
    est, seeds = 0.0, {}
    for kv in points:
        size = kv.get("model.size") or f"d{kv['model.d_model']}x{kv['model.n_layers']}"
        if size not in step:
            bad.append(f"{f}: no header step time for size {size}")
            continue
        est += int(kv["train.steps"]) * step[size]
        key = tuple(sorted((k, v) for k, v in kv.items()
                           if k not in ("run.seed", "run.name", "run.out_dir")))
        seeds.setdefault(key, set()).add(kv["run.seed"])
    print(f"# {stem}: header {claim / 60:.1f} min, its step times give {est / 60:.1f} min "
          f"over {len(points)} points")
    if not (est / 2 <= claim <= 2 * est):
        bad.append(f"{f}: header time {claim:.0f} s is not within 2x of {est:.0f} s")
    width = lambda key: int(dict(key)["model.d_model"]) * int(dict(key)["model.n_layers"])
    smallest = min(width(k) for k in seeds)
    most = {}  # per kind and grouping at the smallest size, the most seeds of a configuration
    for key, ss in seeds.items():
        d = dict(key)
        if width(key) == smallest:
            label = (d.get("model.kind"), d.get("model.towers", ""))
            most[label] = max(most.get(label, 0), len(ss))
    for label, n in most.items():
        if n < 3:
            bad.append(f"{f}: {label} at the smallest size runs {n} seed(s), wanted >= 3")
for b in bad:
    print("#", b)
sys.exit(1 if bad else 0)
EOF
}
check "experiments: >= 3 seeds at the smallest size; header time within 2x of the file's own step times" check_files

R=$SCRATCH/results
cat >"$SCRATCH/a.ini" <<EOF
; a tiny experiment for the test
; step time (test): xs 0.05 s
; time: about 2 s
[run]
name = {model.kind}-s{run.seed}
out_dir = $R/a
[model]
size = xs
seq_len = 32
[data]
modalities = text,image
mix = 1,1
[train]
steps = 8
global_batch = 8
warmup = 2
[log]
every = 2
eval_every = 0
quiet = true
[sweep]
run.seed = 1, 2
model.kind = dense, mot
EOF
export MOTSCALE_NP=1
expect_status 2 "jobs/local: --points outside the points exits 2" bash jobs/local "$SCRATCH/a.ini" --points 9
expect_status 2 "jobs/local: --points that is no list exits 2" bash jobs/local "$SCRATCH/a.ini" --points 1,x
bash jobs/local "$SCRATCH/a.ini" --points 0,2-3 >"$SCRATCH/a.out" 2>&1
check "jobs/local --points 0,2-3 ran (exit $?)" [ -f "$R/a/mot-s2/status" ]
done_points() {
    for p in dense-s1 mot-s1 dense-s2 mot-s2; do
        printf '%s=%s ' "$p" "$(cat "$R/a/$p/status" 2>/dev/null || echo none)"
    done
}
check "jobs/local --points: exactly points 0, 2 and 3 trained ($(done_points))" \
    [ "$(done_points)" = "dense-s1=completed mot-s1=none dense-s2=completed mot-s2=completed " ]
check "jobs/local: an estimate before the points" grep -q "^jobs/local: .*3 of 4 points; estimated time: " "$SCRATCH/a.out"
check "jobs/local: an ETA after each point" [ "$(grep -c 'ETA for the rest: ' "$SCRATCH/a.out")" -eq 3 ]

# b: the same training configurations under other names and another folder
sed -e "s|^name = .*|name = {model.kind}-seed{run.seed}|" -e "s|out_dir = $R/a|out_dir = $R/b|" \
    "$SCRATCH/a.ini" >"$SCRATCH/b.ini"
bash jobs/local "$SCRATCH/b.ini" >"$SCRATCH/b.out" 2>&1
check "jobs/local: the second experiment completes (exit $?)" [ "$(cat "$R/b/mot-seed1/status")" = completed ]
check "jobs/local: completed equal points are linked, not retrained" \
    [ "$(grep -c 'linked, not retrained' "$SCRATCH/b.out")" -eq 3 ]
check "jobs/local: a linked point is a link to the other run, with reused-from" \
    sh -c "[ -L '$R/b/dense-seed1/run.h5' ] && [ '$R/b/dense-seed1/run.h5' -ef '$R/a/dense-s1/run.h5' ] && grep -q 'a/dense-s1' '$R/b/dense-seed1/reused-from'"
check "jobs/local: the point with no completed twin trained" \
    sh -c "[ ! -L '$R/b/mot-seed1/run.h5' ] && [ -s '$R/b/mot-seed1/run.h5' ]"
"$MOTSCALE" compare --dir "$R/b" --baseline model.kind=dense --json >"$SCRATCH/b.json" 2>/dev/null
check_b() {
    $PY - "$SCRATCH/b.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["comparisons"]
runs = [r["run_name"] for x in c for g in ("baseline", "candidate") for r in x[g]["runs"]]
exps = {x[g]["experiment"] for x in c for g in ("baseline", "candidate")}
print("# runs", sorted(runs), "experiments", exps)
sys.exit(0 if sorted(runs) == ["dense-seed1", "dense-seed2", "mot-seed1", "mot-seed2"]
         and exps == {"b"} and c[0]["n_seeds"] == 2 else 1)
EOF
}
check "compare --dir reads the linked runs under the second experiment's names" check_b
