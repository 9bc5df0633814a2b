"""The corpus: source items (images, fortunes, spoken sentences) drawn and split by
item, tokenized, composed into documents whose token shares follow corpus.mix, and
written as a token file (docs/data.md) with the tokenizers beside the tokens."""
import os
import re
import subprocess
import sys
from collections import Counter

import h5py
import numpy as np

import bpe
from corpus_config import die
import speech
import vq

MODALITIES = ["text", "image", "speech"]
DOC, IMG_B, IMG_E, SP_B, SP_E = 0, 1, 2, 3, 4
N_BOUNDARY = 5
KINDS = ["text", "caption+image", "image+caption", "speech", "text+speech", "speech+text"]
PACKAGES = ["dataset-fashion-mnist", "fortunes", "espeak-ng", "python3-numpy", "python3-scipy",
            "python3-sklearn", "python3-h5py"]
TRAIN, HELDOUT = 0, 1


def log(msg):
    print("motscale data build: " + msg, file=sys.stderr, flush=True)


LETTER = re.compile(r"[^\W\d_]| ")


def read_fortunes(cfg):
    """[(item name, text)]: fortunes of at most max_fortune_bytes that are mostly
    letters (no ASCII art, no code), first copy of each text kept."""
    out, seen = [], set()
    for fn in cfg["fortune_files"]:
        path = os.path.join(cfg["fortune_dir"], fn)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                parts = re.split(r"^%\n", f.read(), flags=re.M)
        except OSError as e:
            die("corpus.fortune_files: %s: %s (install the fortunes package)"
                             % (path, e.strerror))
        for k, p in enumerate(parts):
            p = p.strip("\n")
            if not p.strip() or len(p.encode("utf-8")) > cfg["max_fortune_bytes"] or p in seen:
                continue
            if len(LETTER.findall(p)) < 0.8 * len(p):
                continue
            seen.add(p)
            out.append(("fortune:%s:%d" % (fn, k), p))
    return out


def sentences_of(text):
    """Sentences of 3 to 16 words, letters and plain punctuation only."""
    flat = " ".join(text.split())
    out = []
    for s in re.split(r"(?<=[.!?])\s+", flat):
        if re.fullmatch(r"[A-Za-z][A-Za-z ,;:'\-]*[.!?]", s) and 3 <= len(s.split()) <= 16:
            out.append(s)
    return out


def split_last(n, frac):
    """Items 0..n-1 in draw order: the last round(frac n) (at least one) are held out."""
    held = max(1, int(round(frac * n))) if n > 1 else 0
    return np.array([TRAIN] * (n - held) + [HELDOUT] * held, np.uint8)


def draw_per_split(rng, candidates, split, want, frac):
    """want items from candidates (indices), held-out share frac, each split from its own."""
    out = []
    n_held = int(round(frac * want))
    for s, n in ((TRAIN, want - n_held), (HELDOUT, n_held)):
        pool = [c for c in candidates if split[c] == s]
        take = min(n, len(pool))
        out += [pool[i] for i in rng.choice(len(pool), take, replace=False)] if take else []
    return out


def dpkg_versions():
    out = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, check=False)
        out.append("%s=%s" % (p, r.stdout.decode() if r.returncode == 0 and r.stdout else "unknown"))
    return ",".join(out)


class Items:
    """Source items: name, text (caption, fortune or sentence), split."""

    def __init__(self):
        self.name, self.text, self.split = [], [], []

    def add(self, name, text, split):
        self.name.append(name)
        self.text.append(text)
        self.split.append(split)
        return len(self.name) - 1


def build(cfg, ini_text, out, source):
    rng = np.random.default_rng(cfg["seed"])
    items = Items()

    # images: drawn from all 70,000, split by image
    try:
        imgs_all, labels_all = vq.load_fashion(cfg["fashion_mnist_dir"])
    except OSError as e:
        die("corpus.fashion_mnist_dir: %s: %s (install dataset-fashion-mnist)" % (e.filename, e.strerror))
    pick = rng.permutation(imgs_all.shape[0])[:cfg["images"]]
    img_split = split_last(len(pick), cfg["heldout"])
    imgs = imgs_all[pick]
    img_item = [items.add("image:%d" % i, vq.caption(imgs_all[i], labels_all[i]), s)
                for i, s in zip(pick, img_split)]

    # fortunes: text-only documents, split by fortune
    fortunes = read_fortunes(cfg)
    if len(fortunes) < cfg["fortunes"]:
        die("corpus.fortunes: %d wanted, %d fortunes qualify in corpus.fortune_files"
                         % (cfg["fortunes"], len(fortunes)))
    fpick = rng.permutation(len(fortunes))[:cfg["fortunes"]]
    f_split = split_last(len(fpick), cfg["heldout"])
    fort_item = [items.add(fortunes[i][0], fortunes[i][1], s) for i, s in zip(fpick, f_split)]

    # spoken sentences: captions unique to their image, and sentences of the chosen
    # fortunes found in one split only; each inherits the split of its source
    caps = [items.text[i] for i in img_item]
    seen = Counter(caps)
    cand = [k for k, c in enumerate(caps) if seen[c] == 1]
    spoken = [("caption:%s" % items.name[img_item[k]].split(":")[1], caps[k], int(img_split[k]))
              for k in draw_per_split(rng, cand, img_split, cfg["spoken_captions"], cfg["heldout"])]
    sent_split = {}
    for it in fort_item:
        for s in sentences_of(items.text[it]):
            sent_split.setdefault(s, set()).add(items.split[it])
    sents = sorted(s for s, sp in sent_split.items() if len(sp) == 1)
    ssplit = [next(iter(sent_split[s])) for s in sents]
    spoken += [("sentence:%s" % sents[k], sents[k], ssplit[k])
               for k in draw_per_split(rng, range(len(sents)), ssplit, cfg["spoken_sentences"], cfg["heldout"])]
    sent_item = [items.add(n, t, s) for n, t, s in spoken]
    voices, rates = cfg["voices"], cfg["rates"]
    rend = []  # (item, voice index, rate)
    for it in sent_item:
        for v in rng.choice(len(voices), cfg["renditions"], replace=False):
            rend.append((it, int(v), int(rates[rng.integers(len(rates))])))

    # text: byte-level BPE on the train split's text
    train_text = [items.text[i] for i in img_item + fort_item + sent_item if items.split[i] == TRAIN]
    n_merges = cfg["text_vocab"] - N_BOUNDARY - 256
    merges = bpe.train(train_text, n_merges)
    enc = bpe.Encoder(merges)
    log("text: %d BPE merges (of %d asked) from %d train texts" % (len(merges), n_merges, len(train_text)))

    # images: k-means codebook on the train split's patches
    p = cfg["patch"]
    codebook = vq.fit_codebook(imgs[img_split == TRAIN], cfg["image_vocab"], p, cfg["seed"], cfg["kmeans_sample"])
    codes = vq.encode(imgs, codebook, p)
    held = img_split == HELDOUT
    recon = vq.unpatch(codebook[codes[held]], p)
    rmse = float(np.sqrt(((recon - imgs[held] / 255.0) ** 2).mean()))
    log("image: %d codes of %dx%d patches, held-out RMSE %.4f (pixels in [0, 1])" % (len(codebook), p, p, rmse))

    # speech: espeak-ng, 40 ms frames, k-means units on the train split's frames
    waves = speech.synth_all(cfg["espeak"], [(voices[v], r, items.text[it]) for it, v, r in rend])
    feats = [speech.features(w, cfg["speech_features"]) for w in waves]
    tr = [f for f, (it, _, _) in zip(feats, rend) if items.split[it] == TRAIN]
    centroids, fmean, fstd = speech.fit_units(tr, cfg["speech_vocab"], cfg["seed"], cfg["kmeans_sample"])
    units = [speech.units(f, centroids, fmean, fstd, cfg["collapse"]) for f in feats]
    secs = sum(len(w) for w in waves) / speech.RATE
    log("speech: %d renditions, %.0f s of audio, %d frames -> %d units (%d unit ids)"
        % (len(rend), secs, sum(len(f) for f in feats), sum(len(u) for u in units), len(centroids)))

    # documents
    lo_img = cfg["text_vocab"]
    lo_sp = lo_img + cfg["image_vocab"]

    def text_ids(s):
        return [N_BOUNDARY + t for t in enc.encode(s)]

    pools = {s: ([], [], []) for s in (TRAIN, HELDOUT)}
    for it in fort_item:
        pools[items.split[it]][0].append((0, it, -1, 0, [DOC] + text_ids(items.text[it])))
    for k, it in enumerate(img_item):
        im = [IMG_B] + [lo_img + int(c) for c in codes[k]] + [IMG_E]
        kind = 1 + int(rng.integers(2))
        cap = text_ids(items.text[it])
        pools[items.split[it]][1].append((kind, it, -1, 0, [DOC] + (cap + im if kind == 1 else im + cap)))
    for k in rng.permutation(len(rend)):
        it, v, r = rend[k]
        sp = [SP_B] + [lo_sp + int(u) for u in units[k]] + [SP_E]
        kind = 3 + int(rng.integers(3))
        txt = text_ids(items.text[it]) if kind > 3 else []
        pools[items.split[it]][2].append((kind, it, v, r, [DOC] + (txt + sp if kind != 5 else sp + txt)))

    share = np.array(cfg["mix"]) / sum(cfg["mix"])
    bounds = np.array([0, lo_img, lo_sp, lo_sp + cfg["speech_vocab"]])
    docs, counts = [], {}
    for s in (TRAIN, HELDOUT):
        got, at = np.zeros(3), [0, 0, 0]
        while True:
            deficit = np.where(share > 0, share * (got.sum() + 1) - got, -np.inf)
            m = int(np.argmax(deficit))
            if at[m] == len(pools[s][m]):
                break
            d = pools[s][m][at[m]]
            at[m] += 1
            docs.append(d)
            got += np.bincount(np.searchsorted(bounds, d[4], side="right") - 1, minlength=3)[:3]
        counts[s] = (got, at)
        if not got.sum():
            die("the %s split is empty; add items or raise corpus.heldout"
                             % ("train" if s == TRAIN else "held-out"))
        log("%s: %d documents, tokens text/image/speech %d/%d/%d (shares %s); used %d/%d fortunes, %d/%d images, %d/%d renditions"
            % ("train" if s == TRAIN else "held-out", sum(at), *got, ",".join("%.3f" % x for x in got / got.sum()),
               at[0], len(pools[s][0]), at[1], len(pools[s][1]), at[2], len(pools[s][2])))

    # the stream, spans (maximal runs of one modality inside a document), the file
    lens = np.array([len(d[4]) for d in docs])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    tokens = np.concatenate([np.array(d[4], np.int64) for d in docs])
    mod = np.searchsorted(bounds, tokens, side="right") - 1
    cut = np.zeros(tokens.size, bool)
    cut[starts] = True
    cut[1:] |= mod[1:] != mod[:-1]
    sstart = np.nonzero(cut)[0]
    spans = np.stack([sstart, np.diff(np.append(sstart, tokens.size)), mod[sstart]], 1).astype(np.uint64)
    n_train_docs = sum(counts[TRAIN][1])
    heldout_start = int(starts[n_train_docs]) if n_train_docs < len(docs) else tokens.size

    tmp = out + ".tmp"
    vocab_hi = [lo_img, lo_sp, lo_sp + cfg["speech_vocab"]]
    with h5py.File(tmp, "w") as f:
        def put(name, data, **kw):
            return f.create_dataset(name, data=data, track_times=False, **kw)
        put("tokens", tokens.astype(np.uint16 if vocab_hi[-1] <= 65536 else np.uint32),
            chunks=(min(65536, tokens.size),))
        put("spans", spans)
        a = f.attrs
        a["format"] = "motscale-tokens"
        a["format_version"] = np.int32(1)
        a["modalities"] = ",".join(MODALITIES)
        a["vocab_lo"] = np.array([0, lo_img, lo_sp], np.int32)
        a["vocab_hi"] = np.array(vocab_hi, np.int32)
        a["heldout_start"] = np.uint64(heldout_start)
        a["boundary_tokens"] = "<doc>=0,<image>=1,</image>=2,<speech>=3,</speech>=4"
        a["source"] = source
        a["config"] = ini_text
        a["provenance"] = dpkg_versions()
        a["seed"] = np.uint64(cfg["seed"])
        d = put("text/merges", np.array(merges, np.uint16).reshape(-1, 2))
        d.attrs["first_id"] = np.int32(N_BOUNDARY)
        d.attrs["meaning"] = "BPE id b < 256 is byte b, 256 + k is merge k of ids (a, b); joint id = first_id + BPE id"
        d = put("image/codebook", codebook)
        d.attrs["patch"] = np.int32(p)
        d.attrs["grid"] = np.int32(vq.SIDE // p)
        d.attrs["first_id"] = np.int32(lo_img)
        d.attrs["meaning"] = "row c: pixels in [0, 1] of code c's patch, row-major; codes of an image in raster order"
        d.attrs["heldout_rmse"] = np.float64(rmse)
        d = put("speech/centroids", centroids)
        d.attrs["first_id"] = np.int32(lo_sp)
        d.attrs["features"] = cfg["speech_features"]
        d.attrs["sample_rate"] = np.int32(speech.RATE)
        d.attrs["frame_ms"] = np.int32(1000 * speech.HOP // speech.RATE)
        d.attrs["collapsed"] = np.int32(cfg["collapse"])
        put("speech/feature_mean", fmean)
        put("speech/feature_std", fstd)
        put("documents/start", starts.astype(np.uint64))
        d = put("documents/kind", np.array([x[0] for x in docs], np.uint8))
        d.attrs["kinds"] = ",".join(KINDS)
        put("documents/item", np.array([x[1] for x in docs], np.uint32))
        d = put("documents/voice", np.array([x[2] for x in docs], np.int16))
        d.attrs["voices"] = ",".join(voices)
        put("documents/rate", np.array([x[3] for x in docs], np.int16))
        st = h5py.string_dtype()
        put("items/name", np.array(items.name, dtype=object), dtype=st)
        put("items/text", np.array(items.text, dtype=object), dtype=st)
        put("items/split", np.array(items.split, np.uint8))
    os.replace(tmp, out)
    log("%s: %d tokens, %d documents, held-out from token %d" % (out, tokens.size, len(docs), heldout_start))
