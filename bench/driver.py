"""make bench (issue 20): every figure in one table and in results/bench/bench.json.

 1. The per-core SGEMM peak (build/bench/bench_sgemm, one thread, best of square
    sizes 512..2048, 5 products each), three times; the best is the MFU denominator,
    min and max are over the three.
 2. Dense training on one rank, one BLAS thread, at each size of SIZES: motscale and
    the PyTorch reference (bench/torch_ref.py, same model and optimizer, one thread)
    alternate, REPS times each, the first of a pair swapped every repetition. A run
    takes WARMUP steps, then TIMED steps; a figure is the median of the timed steps of
    all repetitions with their min and max; a ratio ours/PyTorch is the median of the
    per-repetition ratios, with their min and max. Peak resident memory is each
    process's own (wait4's ru_maxrss), beside the analytic minimum that
    `motscale flops` prints.
 3. Every bench/bench_*.sh; the `figure` lines they print join the table.

usage: bench/run [--quick] [--out FILE.json] [--only PART,...]
  --quick   one small size, 1 warm-up + 2 timed steps, one repetition, every script in
            its cheapest form (tests/e2e/bench_quick.sh): every figure is produced
  --out     where the JSON goes (default results/bench/bench.json)
  --only    measure only these parts: `training` (dense against PyTorch) and bench
            script names without `.sh` (bench_mot, bench_moe, ...); the SGEMM peak, the
            MFU denominator, is always measured
Environment: BUILD (build), BENCH_REPS (training repetitions, default 3).
Exit 0 when every figure was produced (verdicts do not count), 1 otherwise, 2 on bad
arguments."""
import glob, json, math, os, platform, shutil, statistics, subprocess, sys, tempfile, time

import h5py

PY = "/usr/bin/python3"
# (d_model, n_layers, n_heads, seq_len, batch, vocab) of issue 20; d_ff = 4 d_model as
# in the size presets (docs/config.md)
SIZES = [dict(d_model=256, n_layers=4, n_heads=4, d_ff=1024, seq_len=256, batch=8, vocab=4096),
         dict(d_model=512, n_layers=4, n_heads=8, d_ff=2048, seq_len=256, batch=8, vocab=4096)]
QUICK_SIZE = dict(d_model=128, n_layers=2, n_heads=4, d_ff=512, seq_len=128, batch=4, vocab=1024)
# targets by d_model (issue 20); the quick size has none
TARGETS = {256: {"tokens_ratio": ("ge", 1.25), "mfu": ("ge", 75), "rss_over_min": ("le", 1.25),
                 "rss_ratio": ("le", 0.6)},
           512: {"tokens_ratio": ("ge", 1.12), "mfu": ("ge", 85), "rss_over_min": ("le", 1.25),
                 "rss_ratio": ("le", 0.6)}}
NO_MINIMUM = "n/a (motscale flops has no analytic minimum yet)"
MIB = 1024.0 * 1024.0


def usage_error(msg):
    print("bench/run: %s (usage: bench/run [--quick] [--out FILE.json] [--only PART,...])" % msg, file=sys.stderr)
    sys.exit(2)


def parse_args(argv):
    quick, out, only = False, "results/bench/bench.json", None
    i = 0
    while i < len(argv):
        if argv[i] == "--quick":
            quick = True
        elif argv[i] == "--out" and i + 1 < len(argv):
            i += 1
            out = argv[i]
        elif argv[i] == "--only" and i + 1 < len(argv):
            i += 1
            only = set(argv[i].split(","))
            known = {"training"} | {os.path.basename(p)[:-3] for p in glob.glob("bench/bench_*.sh")}
            for part in only - known:
                usage_error("--only: unknown part '%s' (known: %s)" % (part, ", ".join(sorted(known))))
        else:
            usage_error("unknown argument '%s'" % argv[i])
        i += 1
    reps = os.environ.get("BENCH_REPS", "3")
    if not reps.isdigit() or int(reps) < 1:
        usage_error("BENCH_REPS must be a positive integer, not '%s'" % reps)
    return quick, out, 1 if quick else int(reps), only


def run_measured(cmd, log_path, env):
    """Run cmd with output to log_path; (exit status, peak RSS in bytes) of that process
    (and whatever it waited for), from wait4."""
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_maxrss * 1024  # Linux: KiB


def tail(path, n=3):
    with open(path) as f:
        return " | ".join(f.read().strip().splitlines()[-n:])


def sgemm_peak(build, reps, env):
    out = subprocess.run([os.path.join(build, "bench", "bench_sgemm"), "--reps", str(reps)], env=env,
                         capture_output=True, text=True, check=True).stdout
    print("  " + out.strip().replace("\n", "\n  "))
    return float(out.strip().splitlines()[-1].split()[1])


def defaults_ini(scratch):
    """An empty configuration (every key at its default) as a regular file."""
    path = os.path.join(scratch, "defaults.ini")
    open(path, "w").close()
    return path


def motscale_keys(s, steps):
    return ["model.kind=dense", "model.d_model=%d" % s["d_model"], "model.n_layers=%d" % s["n_layers"],
            "model.n_heads=%d" % s["n_heads"], "model.d_ff=%d" % s["d_ff"], "model.seq_len=%d" % s["seq_len"],
            "train.global_batch=%d" % s["batch"], "data.modalities=text", "data.mix=1",
            "data.vocab_text=%d" % s["vocab"], "train.steps=%d" % steps]


def analytic_minimum(motscale, s, scratch, env):
    """(bytes, None) from the `analytic minimum` line of `motscale flops` (its last
    field), or (None, why)."""
    out = subprocess.run([motscale, "flops", defaults_ini(scratch)] + motscale_keys(s, 1), env=env, capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        if "analytic minimum" in line:
            try:
                return float(line.split()[-1]), None
            except ValueError:
                return None, "n/a (cannot read a byte count at the end of '%s')" % line.strip()
    return None, NO_MINIMUM


def run_motscale(motscale, s, warmup, timed, peak, scratch, name, env):
    """(timed step times, peak RSS, flops per token) of one motscale run, or an error string."""
    cmd = [motscale, "train", defaults_ini(scratch)] + motscale_keys(s, warmup + timed) + [
        "log.every=1", "log.eval_every=0", "log.quiet=true", "log.peak_flops=%g" % peak,
        "run.out_dir=" + scratch, "run.name=" + name]
    log = os.path.join(scratch, name + ".log")
    rc, rss = run_measured(cmd, log, env)
    if rc != 0:
        return "motscale exit %d: %s" % (rc, tail(log))
    with h5py.File(os.path.join(scratch, name, "run.h5"), "r") as f:
        steps, times = f["/metrics/step"][:], f["/metrics/step_time"][:]
        fpt = float(f["/model"].attrs["flops_per_token"])
    return list(times[steps > warmup]), rss, fpt


def run_torch(s, warmup, timed, scratch, name, env):
    sizes = dict(s, steps=warmup + timed)
    cmd = [PY, "bench/torch_ref.py", "bench"] + ["--%s=%d" % (k.replace("_", "-"), v) for k, v in sizes.items()]
    log = os.path.join(scratch, name + ".log")
    rc, rss = run_measured(cmd, log, env)
    if rc != 0:
        return "torch_ref exit %d: %s" % (rc, tail(log))
    rows = [json.loads(line) for line in open(log) if line.startswith("{")]
    return [r["step_time"] for r in rows if "step" in r and r["step"] > warmup], rss


def fig(key, label, unit, values=None, value=None, lo=None, hi=None, target=None, note=None):
    """A figure: median, min and max of values (or given), a target (op, number)."""
    if values:
        value, lo, hi = statistics.median(values), min(values), max(values)
    return {"key": key, "label": label, "unit": unit, "value": value, "min": lo, "max": hi,
            "target": None if target is None else {"op": target[0], "value": target[1]}, "note": note}


def training_figures(s, reps, warmup, timed, peak, motscale, scratch, env, raw):
    """The figures of one size, from alternating pairs of runs."""
    tag = "d%d" % s["d_model"]
    tgt = TARGETS.get(s["d_model"], {})
    desc = "d %d, L %d, H %d, T %d, B %d, V %d" % (s["d_model"], s["n_layers"], s["n_heads"], s["seq_len"],
                                                   s["batch"], s["vocab"])
    print("== dense training, %s: motscale and PyTorch alternating, %d repetition(s), %d warm-up + %d timed steps"
          % (desc, reps, warmup, timed), flush=True)
    ours, torch, errors = [], [], []
    fpt = None
    t0 = time.time()
    for r in range(reps):
        order = ("motscale", "torch") if r % 2 == 0 else ("torch", "motscale")
        for prog in order:
            name = "%s-%s-%d" % (tag, prog, r)
            if prog == "motscale":
                got = run_motscale(motscale, s, warmup, timed, peak, scratch, name, env)
            else:
                got = run_torch(s, warmup, timed, scratch, name, env)
            if isinstance(got, str):
                errors.append(got)
                print("  %s: %s" % (name, got), flush=True)
                continue
            (ours if prog == "motscale" else torch).append(got[:2])
            if prog == "motscale":
                fpt = got[2]
            print("  %s: median step %.1f ms, peak RSS %.0f MiB" % (name, 1e3 * statistics.median(got[0]),
                                                                    got[1] / MIB), flush=True)
    print("  (%.0f s)" % (time.time() - t0), flush=True)
    raw[tag] = {"config": s, "warmup_steps": warmup, "timed_steps": timed, "flops_per_token": fpt,
                "motscale": {"step_times": [o[0] for o in ours], "peak_rss_bytes": [o[1] for o in ours]},
                "torch": {"step_times": [t[0] for t in torch], "peak_rss_bytes": [t[1] for t in torch]},
                "errors": errors}
    tokens = s["batch"] * s["seq_len"]
    minimum, why = analytic_minimum(motscale, s, scratch, env)
    out = []

    def rate(runs):
        times = [t for run in runs for t in run[0]]
        return [tokens / t for t in times]

    # the ratios pair repetition r of each program
    pairs = list(zip(ours, torch)) if len(ours) == len(torch) == reps else []
    ratio = [statistics.median(t[0]) / statistics.median(o[0]) for o, t in pairs]
    rss_ratio = [o[1] / t[1] for o, t in pairs]
    out.append(fig(tag + ".motscale.tokens_per_s", "motscale tokens/s, " + desc, "tok/s", rate(ours)))
    out.append(fig(tag + ".torch.tokens_per_s", "PyTorch tokens/s, " + desc, "tok/s", rate(torch)))
    out.append(fig(tag + ".tokens_ratio", "tokens/s ours / PyTorch, " + desc, "x", ratio,
                   target=tgt.get("tokens_ratio")))
    for prog, runs in (("motscale", ours), ("torch", torch)):
        who = "motscale" if prog == "motscale" else "PyTorch"
        flops = [fpt * x / 1e9 for x in rate(runs)] if fpt else []
        out.append(fig("%s.%s.model_flops" % (tag, prog), "%s model FLOP/s, %s" % (who, desc), "GFLOP/s", flops))
        out.append(fig("%s.%s.mfu" % (tag, prog), "%s MFU, %s" % (who, desc), "%",
                       [100 * x * 1e9 / peak for x in flops], target=tgt.get("mfu") if prog == "motscale" else None))
    ours_rss = [o[1] / MIB for o in ours]
    out.append(fig(tag + ".motscale.peak_rss", "motscale peak RSS, " + desc, "MiB", ours_rss))
    out.append(fig(tag + ".torch.peak_rss", "PyTorch peak RSS, " + desc, "MiB", [t[1] / MIB for t in torch]))
    if minimum is None:
        out.append(fig(tag + ".analytic_minimum", "analytic minimum memory, " + desc, "MiB", note=why))
        out.append(fig(tag + ".rss_over_min", "motscale peak RSS / analytic minimum, " + desc, "x",
                       target=tgt.get("rss_over_min"), note=why))
    else:
        m = minimum / MIB
        out.append(fig(tag + ".analytic_minimum", "analytic minimum memory, " + desc, "MiB", value=m, lo=m, hi=m))
        out.append(fig(tag + ".rss_over_min", "motscale peak RSS / analytic minimum, " + desc, "x",
                       [x / m for x in ours_rss], target=tgt.get("rss_over_min")))
    out.append(fig(tag + ".rss_ratio", "peak RSS ours / PyTorch, " + desc, "x", rss_ratio,
                   target=tgt.get("rss_ratio")))
    return out


def script_figures(path, env):
    """Run one bench script, echoing its lines; its `figure` lines as figures."""
    print("== " + path, flush=True)
    t0 = time.time()
    p = subprocess.Popen(["sh", path], stdout=subprocess.PIPE, text=True, env=env)
    out = []
    for line in p.stdout:
        if not line.startswith("figure\t"):
            print("  " + line.rstrip(), flush=True)
            continue
        f = line.rstrip("\n").split("\t")
        num = lambda x: float(x) if x not in ("", "-") else None
        try:
            out.append(fig(f[1], f[8], f[2], value=num(f[3]), lo=num(f[4]), hi=num(f[5]),
                           target=None if f[6] == "-" else (f[6], float(f[7]))))
        except (IndexError, ValueError):
            out.append(fig(f[1] if len(f) > 1 else "?", line.strip(), "", note="unreadable figure line"))
    if p.wait() != 0:
        print("  %s exited with status %d" % (path, p.returncode), flush=True)
    print("  (%.0f s)" % (time.time() - t0), flush=True)
    return out


def verdict(f):
    if f["value"] is None or not math.isfinite(f["value"]):
        return "n/a" if f["note"] else "MISSING"
    if f["target"] is None:
        return "-"
    op, t = f["target"]["op"], f["target"]["value"]
    return "met" if (f["value"] >= t if op == "ge" else f["value"] <= t) else "NOT met"


def num(x):
    if x is None:
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return ("%.4g" % x) if abs(x) < 1e3 else ("%.0f" % x)
    return "%.3g" % x


def print_table(figs):
    rows = [("figure", "median", "min", "max", "unit", "target", "verdict")]
    for f in figs:
        t = f["target"]
        rows.append((f["label"], num(f["value"]) if f["value"] is not None else "n/a", num(f["min"]), num(f["max"]),
                     f["unit"], "-" if t is None else "%s %s" % (">=" if t["op"] == "ge" else "<=", num(t["value"])),
                     f["verdict"]))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) if j == 0 else c.rjust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    for f in figs:
        if f["note"] and f["value"] is None:
            print("note: %s: %s" % (f["label"], f["note"]))


def main(argv):
    quick, out_path, reps, only = parse_args(argv)
    build = os.environ.get("BUILD", "build")
    motscale = os.path.abspath(os.path.join(build, "motscale"))
    for exe in (motscale, os.path.join(build, "bench", "bench_sgemm")):
        if not os.access(exe, os.X_OK):
            usage_error("%s is missing; build it first (make bench)" % exe)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", MOTSCALE=motscale, BUILD=build,
               BENCH_QUICK="1" if quick else "0")
    sizes, warmup, timed = ([QUICK_SIZE], 1, 2) if quick else (SIZES, 2, 5)
    scratch = tempfile.mkdtemp(prefix="motscale-bench-", dir=os.environ.get("TMPDIR", "/tmp"))
    started = time.time()
    load = [os.getloadavg()[0]]
    try:
        print("== SGEMM peak, one thread", flush=True)
        peaks = [sgemm_peak(build, 1 if quick else 5, env) for _ in range(1 if quick else 3)]
        peak = max(peaks)
        figs = [fig("sgemm.peak", "SGEMM peak, one thread (OpenBLAS, best of n=512..2048); the MFU denominator",
                    "GFLOP/s", value=peak / 1e9, lo=min(peaks) / 1e9, hi=peak / 1e9)]
        raw = {}
        for s in sizes if only is None or "training" in only else []:
            figs += training_figures(s, reps, warmup, timed, peak, motscale, scratch, env, raw)
        for path in sorted(glob.glob("bench/bench_*.sh")):
            if only is None or os.path.basename(path)[:-3] in only:
                figs += script_figures(path, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load.append(os.getloadavg()[0])
    for f in figs:
        f["verdict"] = verdict(f)
    doc = {"schema_version": 1, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "seconds": round(time.time() - started, 1), "quick": quick, "repetitions": reps,
           "only": sorted(only) if only else None,
           "host": platform.node(), "cores": os.cpu_count(), "load_avg_1min": {"start": load[0], "end": load[1]},
           "git_commit": subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                                        capture_output=True, text=True).stdout.strip() or "unknown",
           "peak_flops_per_core": peak, "sgemm_peaks": peaks, "figures": figs, "training": raw}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    print("\n== summary (%s, %s, %.0f s, load average %.2f -> %.2f on %d cores)" % (
        doc["created_utc"], "quick" if quick else "full", doc["seconds"], load[0], load[1], os.cpu_count()))
    print_table(figs)
    print("wrote " + out_path)
    missing = [f["key"] for f in figs if f["verdict"] == "MISSING"]
    if missing:
        print("bench/run: figures not produced: " + ", ".join(missing), file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
