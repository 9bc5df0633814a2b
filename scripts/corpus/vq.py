"""Images: Fashion-MNIST from its IDX files, captions from each image's class and
measured properties, and the VQ tokenizer: a k-means codebook of patch x patch pixel
patches; an image is its grid of codes in raster order (Chameleon's layout)."""
import gzip
import os
import struct

import numpy as np
from sklearn.cluster import KMeans

from corpus_config import FASHION_CLASSES

SIDE = 28
INK = 32 / 255              # a pixel above this is part of the object
SMALL, LARGE = 0.35, 0.54   # ink-fraction terciles of the 60,000 training images
DARK, BRIGHT = 0.58, 0.73   # terciles of the mean object intensity


def _idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, n = struct.unpack(">II", data[:8])
    if got != magic:
        raise ValueError("%s: not an IDX file (magic %#x)" % (path, got))
    return data, n


def load_fashion(d):
    """(images uint8 [70000, 28, 28], labels uint8 [70000]): train then t10k."""
    imgs, labels = [], []
    for part in ("train", "t10k"):
        data, n = _idx(os.path.join(d, part + "-images-idx3-ubyte.gz"), 0x803)
        imgs.append(np.frombuffer(data, np.uint8, offset=16).reshape(n, SIDE, SIDE))
        data, n = _idx(os.path.join(d, part + "-labels-idx1-ubyte.gz"), 0x801)
        labels.append(np.frombuffer(data, np.uint8, offset=8))
    return np.concatenate(imgs), np.concatenate(labels)


def caption(img, label):
    """'a dark small sandal, 31 percent ink, 20 by 9 pixels.' from the pixels."""
    x = img.astype(np.float64) / 255
    ink = x > INK
    frac = ink.mean()
    bright = x[ink].mean() if ink.any() else 0.0
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    h = rows[-1] - rows[0] + 1 if rows.size else 0
    w = cols[-1] - cols[0] + 1 if cols.size else 0
    tone = "dark" if bright < DARK else "grey" if bright < BRIGHT else "bright"
    size = "small" if frac < SMALL else "medium" if frac < LARGE else "large"
    return "a %s %s %s, %d percent ink, %d by %d pixels." % (
        tone, size, FASHION_CLASSES[label], round(100 * frac), w, h)


def patches(imgs, p):
    """imgs [n, 28, 28] -> [n, (28/p)^2, p*p] in [0, 1], patches in raster order."""
    n, g = imgs.shape[0], SIDE // p
    x = imgs.reshape(n, g, p, g, p).transpose(0, 1, 3, 2, 4).reshape(n, g * g, p * p)
    return x.astype(np.float32) / 255


def unpatch(x, p):
    """Inverse of patches: [n, g*g, p*p] -> [n, 28, 28]."""
    n, g = x.shape[0], SIDE // p
    return x.reshape(n, g, g, p, p).transpose(0, 1, 3, 2, 4).reshape(n, SIDE, SIDE)


def fit_codebook(train_imgs, k, p, seed, sample):
    x = patches(train_imgs, p).reshape(-1, p * p)
    rng = np.random.default_rng([seed, 1])
    if x.shape[0] > sample:
        x = x[np.sort(rng.choice(x.shape[0], sample, replace=False))]
    km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=seed).fit(x)
    return km.cluster_centers_.astype(np.float32)


def encode(imgs, codebook, p):
    """Nearest code of every patch: [n, (28/p)^2] ints."""
    x = patches(imgs, p)
    c2 = (codebook ** 2).sum(1)
    out = np.empty(x.shape[:2], np.int64)
    for i in range(0, x.shape[0], 512):
        b = x[i:i + 512]
        d = c2[None, None, :] - 2 * b @ codebook.T
        out[i:i + 512] = d.argmin(-1)
    return out
