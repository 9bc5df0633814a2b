"""The image check of `motscale data inspect --png`: held-out images beside their
reconstruction from the codes in the token file and the stored codebook, drawn by
gnuplot as one grey-scale PNG."""
import configparser
import os
import subprocess
import tempfile

import h5py
import numpy as np

import vq
from corpus_config import die

SCALE = 4   # screen pixels per image pixel
GAP = 2     # image pixels between cells


def held_out_images(f, n):
    """[(item name, codes)] of the first n image documents of the held-out split."""
    tok = f["tokens"][:].astype(np.int64)
    start = f["documents/start"][:].astype(np.int64)
    kind = f["documents/kind"][:]
    item = f["documents/item"][:]
    names = f["items/name"]
    lo = int(f["image/codebook"].attrs["first_id"])
    k = len(f["image/codebook"])
    held = int(f.attrs["heldout_start"])
    out = []
    ends = np.append(start[1:], tok.shape[0])
    for s, e, kd, it in zip(start, ends, kind, item):
        if s < held or kd not in (1, 2):
            continue
        t = tok[s:e]
        out.append((names[it].decode() if isinstance(names[it], bytes) else names[it], t[(t >= lo) & (t < lo + k)] - lo))
        if len(out) == n:
            break
    return out


def write_png(path, png, n):
    """The grid of the first n held-out images; the originals are read again from
    the Fashion-MNIST files named in the file's config attribute."""
    with h5py.File(path, "r") as f:
        if "image/codebook" not in f or "documents/start" not in f:
            die("%s: --png needs a file of motscale data build (no /image/codebook or /documents)" % path,
                "motscale data inspect")
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_string(f.attrs["config"])
        fashion_dir = cfg.get("corpus", "fashion_mnist_dir")
        cb = f["image/codebook"][:]
        p = int(f["image/codebook"].attrs["patch"])
        imgs = held_out_images(f, n)
    if not imgs:
        die("%s: no held-out image documents to draw" % path, "motscale data inspect")
    originals, _ = vq.load_fashion(fashion_dir)
    orig = np.stack([originals[int(name.split(":")[1])] for name, _ in imgs]) / 255.0
    recon = vq.unpatch(cb[np.stack([c for _, c in imgs])], p)
    rmse = float(np.sqrt(((recon - orig) ** 2).mean()))
    cols = 8
    rows = (len(imgs) + cols - 1) // cols
    cell = vq.SIDE + GAP
    grid = np.ones((rows * cell + GAP, cols * (2 * vq.SIDE + GAP) + GAP))
    for i in range(len(imgs)):
        r, c = divmod(i, cols)
        y, x = GAP + r * cell, GAP + c * (2 * vq.SIDE + GAP)
        grid[y:y + vq.SIDE, x:x + vq.SIDE] = 1 - orig[i]
        grid[y:y + vq.SIDE, x + vq.SIDE:x + 2 * vq.SIDE] = 1 - np.clip(recon[i], 0, 1)
    h, w = grid.shape
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "grid.bin")
        np.round(255 * grid[::-1]).astype(np.uint8).tofile(dat)
        script = "\n".join([
            "set terminal pngcairo size %d,%d font ',10'" % (w * SCALE, h * SCALE + 24),
            "set output '%s'" % png.replace("'", "''"),
            "set title 'held-out images: original | reconstruction from %d codes of %dx%d (RMSE %.3f)' offset 0,-0.5"
            % (len(cb), p, p, rmse),
            "set lmargin 0", "set rmargin 0", "set bmargin 0", "set tmargin 1.6",
            "unset border", "unset tics", "unset key", "unset colorbox",
            "set palette gray", "set cbrange [0:255]",
            "set xrange [-0.5:%f]" % (w - 0.5), "set yrange [-0.5:%f]" % (h - 0.5),
            "plot '%s' binary array=(%d,%d) format='%%uchar' with image pixels" % (dat, w, h),
        ])
        r = subprocess.run(["gnuplot"], input=script.encode(), stderr=subprocess.PIPE, check=False)
        if r.returncode != 0:
            raise RuntimeError("gnuplot failed: " + r.stderr.decode()[:300])
    return len(imgs), rmse
