"""PyTorch reference of motscale's dense tower transformer (docs/model.md), written
independently of src/: the same equations, tensor names, initialisation scheme,
AdamW, learning-rate schedule and gradient clipping, on one thread.

  bench: trains on random tokens at a given size and prints one JSON line per step
         (its time) and a last line with this process's peak resident memory.
  check: continues a motscale run from one of its checkpoints on the same token-file
         windows, in float64, and compares the losses, gradient norms and learning
         rates of the steps that follow with the run record, and the parameters
         reached with the run's last checkpoint. Exit 1 on disagreement.

usage: /usr/bin/python3 bench/torch_ref.py bench --d-model D --n-layers L --n-heads H
           --d-ff F --seq-len T --batch B --vocab V --steps N [--seed S]
       /usr/bin/python3 bench/torch_ref.py check RUN_DIR --from STEP
           --tol-loss X --tol-grad-norm X --tol-lr X --tol-params X
Bad input: one line on stderr, exit 2."""
import argparse, configparser, json, math, os, resource, sys, time

# One thread everywhere, set before torch starts its pools (OpenBLAS does the GEMMs).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import h5py
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)


class Spec:
    """Model and optimizer settings: the motscale keys (docs/config.md) this needs."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.hd = self.d_model // self.n_heads


def tensor_table(s):
    """(name, shape, decay, init std) in motscale's table order (src/model/model.c):
    embedding, head, then the tower's layers and its final norm. Matrices are
    normal(0, init_std), W_o and W_2 init_std / sqrt(2 L); norms start at one."""
    d, f, V = s.d_model, s.d_ff, s.vocab
    out_std = s.init_std / math.sqrt(2.0 * s.n_layers)
    rows = [("embed", (V, d), True, s.init_std), ("head", (V, d), True, s.init_std)]
    for l in range(s.n_layers):
        p = "tower0.layer%d." % l
        rows += [(p + "attn.wq", (d, d), True, s.init_std), (p + "attn.wk", (d, d), True, s.init_std),
                 (p + "attn.wv", (d, d), True, s.init_std), (p + "attn.wo", (d, d), True, out_std),
                 (p + "ffn.w1", (d, f), True, s.init_std), (p + "ffn.w3", (d, f), True, s.init_std),
                 (p + "ffn.w2", (f, d), True, out_std),
                 (p + "attn_norm", (1, d), False, None), (p + "ffn_norm", (1, d), False, None)]
        if s.qk_norm:
            rows += [(p + "attn.q_norm", (1, d), False, None), (p + "attn.k_norm", (1, d), False, None)]
    rows.append(("tower0.final_norm", (1, d), False, None))
    return rows


def init_params(s, seed, dtype):
    torch.manual_seed(seed)
    params = {}
    for name, shape, decay, std in tensor_table(s):
        t = torch.empty(shape, dtype=dtype)
        if decay:
            torch.nn.init.normal_(t, 0.0, std)
        else:
            torch.nn.init.ones_(t)
        params[name] = t.requires_grad_()
    return params


def rmsnorm(x, w, eps):
    # x / sqrt(mean(x^2) + eps) * w over the last dimension; w broadcasts: (1, d) or (H, hd)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(s, dtype):
    # angle(i, j) = i * theta^(-2j / hd) for the pair (2j, 2j+1); computed in double
    i = torch.arange(s.seq_len, dtype=torch.float64)[:, None]
    j = torch.arange(s.hd // 2, dtype=torch.float64)[None, :]
    ang = i * torch.pow(torch.tensor(s.rope_theta, dtype=torch.float64), -2.0 * j / s.hd)
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def rope(x, cos, sin):
    # x: (B, H, T, hd); (a, b) of each pair -> (a c - b s, a s + b c)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def forward(params, s, tokens, rope_cs):
    """Per-token cross-entropy (B*T,) of windows tokens: (B, T + 1)."""
    B, T = tokens.shape[0], s.seq_len
    inp, tgt = tokens[:, :T], tokens[:, 1:]
    cos, sin = rope_cs
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    x = params["embed"][inp]  # (B, T, d)
    for l in range(s.n_layers):
        P = lambda n: params["tower0.layer%d.%s" % (l, n)]
        a_in = rmsnorm(x, P("attn_norm"), s.eps) if s.norm == "pre" else x
        q, k, v = (torch.matmul(a_in, P(n)).view(B, T, s.n_heads, s.hd) for n in ("attn.wq", "attn.wk", "attn.wv"))
        if s.qk_norm:  # RMSNorm per head over its hd values, weight per (head, dim)
            q = rmsnorm(q, P("attn.q_norm").view(s.n_heads, s.hd), s.eps)
            k = rmsnorm(k, P("attn.k_norm").view(s.n_heads, s.hd), s.eps)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(s.hd))
        att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        o = torch.matmul(att, v).transpose(1, 2).reshape(B, T, s.d_model)
        y = torch.matmul(o, P("attn.wo"))
        h = x + (y if s.norm == "pre" else rmsnorm(y, P("attn_norm"), s.eps))
        f_in = rmsnorm(h, P("ffn_norm"), s.eps) if s.norm == "pre" else h
        z = torch.matmul(F.silu(torch.matmul(f_in, P("ffn.w1"))) * torch.matmul(f_in, P("ffn.w3")), P("ffn.w2"))
        x = h + (z if s.norm == "pre" else rmsnorm(z, P("ffn_norm"), s.eps))
    logits = torch.matmul(rmsnorm(x, params["tower0.final_norm"], s.eps), params["head"].t())
    return F.cross_entropy(logits.reshape(B * T, s.vocab), tgt.reshape(B * T), reduction="none")


def lr_at(s, step):
    """src/train/optim.c lr_at, 0-based step: linear warm-up to lr over `warmup`
    steps, lr * (step + 1) / warmup; then cosine from lr to lr_min reached at the
    last step: lr_min + (lr - lr_min) (1 + cos(pi (step - warmup) / (steps - warmup - 1))) / 2,
    or lr_min when steps - warmup <= 1 (the one decay step is the last step)."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    span = s.steps - s.warmup
    if span <= 1:
        return s.lr_min
    frac = (step - s.warmup) / (span - 1)
    return s.lr_min + 0.5 * (s.lr - s.lr_min) * (1 + math.cos(math.pi * frac))


def make_optimizer(s, params):
    # decoupled weight decay on matrices only (embedding and head included), not norms
    decay = {n for n, _, dec, _ in tensor_table(s) if dec}
    groups = [{"params": [p for n, p in params.items() if n in decay], "weight_decay": s.weight_decay},
              {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.adam_eps)


def train_step(params, opt, s, tokens, step, rope_cs):
    """One optimizer step (0-based `step`): loss, pre-clip gradient norm, lr."""
    ce = forward(params, s, tokens, rope_cs)
    loss = ce.mean()
    loss.backward()
    # global L2 norm; scale by grad_clip / norm when above grad_clip (src/train/train.c)
    with torch.no_grad():
        gnorm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in params.values()))
        if s.grad_clip > 0 and gnorm > s.grad_clip:
            for p in params.values():
                p.grad.mul_(s.grad_clip / gnorm)
    lr = lr_at(s, step)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.step()
    opt.zero_grad(set_to_none=True)
    return ce.detach(), gnorm, lr


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# ---- bench -------------------------------------------------------------------------

def cmd_bench(a):
    s = Spec(d_model=a.d_model, n_layers=a.n_layers, n_heads=a.n_heads, d_ff=a.d_ff, seq_len=a.seq_len,
             vocab=a.vocab, norm="swin", qk_norm=False, eps=1e-5, rope_theta=10000.0, init_std=0.02,
             lr=3e-3, lr_min=3e-4, warmup=20, steps=a.steps, beta1=0.9, beta2=0.95, adam_eps=1e-8,
             weight_decay=0.1, grad_clip=1.0)
    params = init_params(s, a.seed, torch.float32)
    opt = make_optimizer(s, params)
    rope_cs = rope_tables(s, torch.float32)
    gen = torch.Generator().manual_seed(a.seed + 1)
    for step in range(a.steps):
        tokens = torch.randint(0, s.vocab, (a.batch, s.seq_len + 1), generator=gen)
        t0 = time.perf_counter()
        ce, _, _ = train_step(params, opt, s, tokens, step, rope_cs)
        dt = time.perf_counter() - t0
        print(json.dumps({"step": step + 1, "step_time": dt, "loss": float(ce.mean())}), flush=True)
    print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "torch": torch.__version__,
                      "params": sum(p.numel() for p in params.values()), "threads": torch.get_num_threads()}))
    return 0


# ---- check -------------------------------------------------------------------------

def fail_input(msg):
    print("torch_ref: " + msg, file=sys.stderr)
    sys.exit(2)


def load_run(run_dir):
    path = os.path.join(run_dir, "run.h5")
    if not os.path.isfile(path):
        fail_input("%s: no run record" % path)
    with h5py.File(path, "r") as f:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_string(f.attrs["config"])
        m = {k: f["/metrics/" + k][:] for k in ("step", "loss", "grad_norm", "lr", "loss_by_modality")}
        names = [str(x) for x in f["/model"].attrs["modality_names"]]
        vocab = int(f["/model"].attrs["vocab_size"])
    return cfg, m, names, vocab


def spec_from_config(cfg, vocab):
    g = lambda sec, key: cfg.get(sec, key)
    if g("model", "kind") != "dense" or g("data", "source") != "file":
        fail_input("check needs a dense run on a token file (model.kind=dense, data.source=file)")
    i, x = lambda k: int(cfg.get(*k.split("."))), lambda k: float(cfg.get(*k.split(".")))
    return Spec(d_model=i("model.d_model"), n_layers=i("model.n_layers"), n_heads=i("model.n_heads"),
                d_ff=i("model.d_ff"), seq_len=i("model.seq_len"), vocab=vocab, norm=g("model", "norm"),
                qk_norm=g("model", "qk_norm") == "true", eps=x("model.norm_eps"), rope_theta=x("model.rope_theta"),
                init_std=x("model.init_std"), lr=x("train.lr"), lr_min=x("train.lr_min"), warmup=i("train.warmup"),
                steps=i("train.steps"), beta1=x("train.beta1"), beta2=x("train.beta2"),
                adam_eps=x("train.adam_eps"), weight_decay=x("train.weight_decay"),
                grad_clip=x("train.grad_clip"), global_batch=i("train.global_batch"), path=g("data", "path"))


def read_checkpoint(path, s, dtype):
    if not os.path.isfile(path):
        fail_input("%s: no such checkpoint" % path)
    out = {}
    with h5py.File(path, "r") as f:
        step = int(f.attrs["step"])
        if int(f.attrs["data_cursor"]) != step:
            fail_input("%s: data_cursor %d is not the step %d" % (path, f.attrs["data_cursor"], step))
        for grp in ("params", "adam_m", "adam_v"):
            out[grp] = {}
            for name, shape, _, _ in tensor_table(s):
                a = f["/%s/%s" % (grp, name)][:]
                if a.shape != shape:
                    fail_input("%s: /%s/%s has shape %s, expected %s" % (path, grp, name, a.shape, shape))
                out[grp][name] = torch.from_numpy(a).to(dtype)
    return step, out


class TrainWindows:
    """src/data/tokfile.c: the train split is /tokens[0, heldout_start) (absent: the
    first n - n // 10); window k is the seq_len + 1 tokens at k (seq_len + 1), k taken
    modulo the number of whole windows; step s (0-based) reads windows
    s * global_batch ... s * global_batch + global_batch - 1 (src/train/train.c)."""

    def __init__(self, path, s):
        with h5py.File(path, "r") as f:
            tok = f["tokens"][:]
            end = int(f.attrs["heldout_start"]) if "heldout_start" in f.attrs else len(tok) - len(tok) // 10
            self.lo = [int(x) for x in f.attrs["vocab_lo"]]
        self.W = s.seq_len + 1
        self.n = end // self.W
        self.tok = torch.from_numpy(tok[: self.n * self.W].astype("int64")).view(self.n, self.W)
        self.G = s.global_batch

    def step(self, s):
        k = torch.arange(s * self.G, (s + 1) * self.G) % self.n
        return self.tok[k]

    def modality(self, ids):
        # target-token modality: the contiguous id ranges of the joint vocabulary
        m = torch.zeros_like(ids)
        for j, lo in enumerate(self.lo):
            m[ids >= lo] = j
        return m


def cmd_check(a):
    dtype = torch.float64
    cfg, metrics, names, vocab = load_run(a.run_dir)
    s = spec_from_config(cfg, vocab)
    ckdir = os.path.join(a.run_dir, "checkpoints")
    k0, ck = read_checkpoint(os.path.join(ckdir, "ckpt-%09d.h5" % a.start), s, dtype)
    kN, last = read_checkpoint(os.path.join(ckdir, "ckpt-%09d.h5" % s.steps), s, dtype)
    if k0 != a.start or kN != s.steps or k0 >= kN:
        fail_input("checkpoints at steps %d and %d: need %d < %d (train.steps)" % (k0, kN, a.start, s.steps))
    rows = {int(st): i for i, st in enumerate(metrics["step"])}
    if any(t not in rows for t in range(1, s.steps + 1)):
        fail_input("the run record lacks rows 1..%d (log.every must be 1)" % s.steps)
    data = TrainWindows(s.path, s)
    params = {n: t.clone().requires_grad_() for n, t in ck["params"].items()}
    opt = make_optimizer(s, params)
    for n, p in params.items():
        opt.state[p] = {"step": torch.tensor(float(k0)), "exp_avg": ck["adam_m"][n].clone(),
                        "exp_avg_sq": ck["adam_v"][n].clone()}
    rope_cs = rope_tables(s, dtype)
    bad = []
    worst = {"loss": 0.0, "grad_norm": 0.0, "lr": 0.0, "loss_by_modality": 0.0}
    # the schedule alone, every logged step
    for t in range(1, s.steps + 1):
        e = abs(lr_at(s, t - 1) - metrics["lr"][rows[t]]) / metrics["lr"][rows[t]]
        worst["lr"] = max(worst["lr"], e)
    clipped = 0
    for step in range(k0, kN):
        tokens = data.step(step)
        ce, gnorm, _ = train_step(params, opt, s, tokens, step, rope_cs)
        r = rows[step + 1]
        loss = float(ce.mean())
        worst["loss"] = max(worst["loss"], abs(loss - metrics["loss"][r]) / abs(metrics["loss"][r]))
        worst["grad_norm"] = max(worst["grad_norm"], abs(gnorm - metrics["grad_norm"][r]) / metrics["grad_norm"][r])
        mod = data.modality(tokens[:, 1:].reshape(-1))
        for j in range(len(names)):
            sel = mod == j
            if sel.any():
                lm = float(ce[sel].mean())
                worst["loss_by_modality"] = max(worst["loss_by_modality"],
                                                abs(lm - metrics["loss_by_modality"][r][j]) / abs(lm))
        clipped += s.grad_clip > 0 and gnorm > s.grad_clip
        print("step %d: loss torch %.9f motscale %.9f | grad norm torch %.7g motscale %.7g | lr %.6g"
              % (step + 1, loss, metrics["loss"][r], gnorm, metrics["grad_norm"][r], lr_at(s, step)))
    # parameters reached: error of the update over the checked steps, per tensor
    # ||p_torch - p_motscale|| / ||p_motscale - p_start||
    upd = 0.0
    for n, p in params.items():
        moved = float((last["params"][n] - ck["params"][n]).norm())
        if moved > 0:
            upd = max(upd, float((p.detach() - last["params"][n]).norm()) / moved)
    worst["params"] = upd
    tol = {"loss": a.tol_loss, "loss_by_modality": a.tol_loss, "grad_norm": a.tol_grad_norm, "lr": a.tol_lr,
           "params": a.tol_params}
    for k in ("loss", "loss_by_modality", "grad_norm", "lr", "params"):
        ok = worst[k] <= tol[k]
        print("%s %s: max relative difference %.3g (tolerance %g)" % ("agree" if ok else "DISAGREE", k, worst[k], tol[k]))
        if not ok:
            bad.append(k)
    print("steps %d..%d checked, %d of them clipped (grad_clip %g)" % (k0 + 1, kN, clipped, s.grad_clip))
    print(json.dumps({"max_rel": worst, "tolerance": tol, "steps": [k0 + 1, kN], "clipped": int(clipped)}))
    return 1 if bad else 0


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as motscale does
        print("torch_ref: %s (see --help)" % message, file=sys.stderr)
        sys.exit(2)


def main(argv):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", parser_class=Parser)
    b = sub.add_parser("bench")
    for name in ("d-model", "n-layers", "n-heads", "d-ff", "seq-len", "batch", "vocab", "steps"):
        b.add_argument("--" + name, type=int, required=True)
    b.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("check")
    c.add_argument("run_dir")
    c.add_argument("--from", dest="start", type=int, required=True)
    for name in ("tol-loss", "tol-grad-norm", "tol-lr", "tol-params"):
        c.add_argument("--" + name, type=float, required=True)
    a = p.parse_args(argv)
    if a.mode == "bench":
        if min(a.d_model, a.n_layers, a.n_heads, a.d_ff, a.seq_len, a.batch, a.vocab, a.steps) < 1:
            p.error("every size must be positive")
        if a.d_model % a.n_heads or (a.d_model // a.n_heads) % 2:
            p.error("d-model must split into heads of even size (RoPE pairs)")
        return cmd_bench(a)
    if a.mode == "check":
        return cmd_check(a)
    p.error("a mode is required: bench or check")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
