#!/bin/sh
# `motscale data build` on a small real corpus (Fashion-MNIST, fortunes, espeak-ng):
# the file passes the reader's validation, splits are disjoint by source item,
# building twice gives identical bytes, the tokenizers keep what they should (BPE
# round trip, image reconstruction, speech units), inspect's entropies and PNG, a
# short training run on it, and bad corpus INIs refused with exit 2.
. tests/lib.sh

if [ ! -d /usr/share/datasets/fashion-mnist ] || [ ! -d /usr/share/games/fortunes ] ||
    ! command -v espeak-ng >/dev/null 2>&1 || ! $PY -c 'import sklearn, scipy' 2>/dev/null; then
    ok "real corpus # SKIP dataset-fashion-mnist, fortunes, espeak-ng or python3-sklearn missing (scripts/bootstrap)"
    exit 0
fi

# A few hundred images and sentences: seconds to build. Speech gets a larger share
# than the paper's 1/13 so that every rendition is used and the unit tests below
# have a few thousand tokens.
cat >"$SCRATCH/c.ini" <<'INI'
[corpus]
seed = 7
images = 300
fortunes = 150
spoken_captions = 20
spoken_sentences = 40
renditions = 2
text_vocab = 400
image_vocab = 32
speech_vocab = 48
mix = 1,1,1
INI

expect_status 0 "data build --help" "$MOTSCALE" data build --help
t0=$(date +%s)
expect_status 0 "data build writes the small corpus" "$MOTSCALE" data build "$SCRATCH/c.ini" -o "$SCRATCH/a.h5"
t1=$(date +%s)
echo "# build took $((t1 - t0)) s"
check "... and says the reader validated it" grep -q "a.h5: [0-9]* tokens, [0-9]* spans" "$SCRATCH/last.out"
expect_status 0 "building again" "$MOTSCALE" data build "$SCRATCH/c.ini" -o "$SCRATCH/b.h5"
check "gives an identical file" cmp -s "$SCRATCH/a.h5" "$SCRATCH/b.h5"

expect_status 0 "data inspect accepts it" "$MOTSCALE" data inspect "$SCRATCH/a.h5" --png "$SCRATCH/grid.png"
cp "$SCRATCH/last.out" "$SCRATCH/inspect.out"
check "inspect: a row per modality with H_bits > H_next_bits" $PY - "$SCRATCH/inspect.out" <<'PY'
import sys
rows = {l.split()[0]: l.split() for l in open(sys.argv[1]) if l.split()[:1] in (["text"], ["image"], ["speech"])}
assert set(rows) == {"text", "image", "speech"}, rows
for m, r in rows.items():
    h, hn, top = float(r[-3]), float(r[-2]), float(r[-1])
    assert 0 < hn < h <= top + 1e-9, (m, h, hn, top)
PY
check "inspect --png writes a PNG wider than tall" $PY - "$SCRATCH/grid.png" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", b[:16]
w, h = struct.unpack(">II", b[16:24])
assert w > h > 100, (w, h)
PY

# Independent checks with h5py and the package files themselves.
check "format: documents tile the stream, each opens with <doc>; held-out starts at a document" \
    $PY - "$SCRATCH/a.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:].astype(np.int64); st = f["documents/start"][:].astype(np.int64)
assert st[0] == 0 and (np.diff(st) > 0).all() and st[-1] < t.size
assert (t[st] == 0).all() and (t == 0).sum() == st.size   # <doc> only at document starts
assert int(f.attrs["heldout_start"]) in set(st.tolist())
prov = f.attrs["provenance"]
for p in ("dataset-fashion-mnist", "fortunes", "espeak-ng", "python3-sklearn"):
    assert p + "=" in prov and p + "=unknown" not in prov, prov
assert "[corpus]" in f.attrs["config"] and f["image/codebook"].shape == (32, 16)
assert f["speech/centroids"].shape[0] == 48 and f["text/merges"].shape[1] == 2
PY

check "splits are disjoint by source item (images, fortunes, spoken sentences)" $PY - "$SCRATCH/a.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
st = f["documents/start"][:].astype(np.int64); item = f["documents/item"][:]
name = [n.decode() if isinstance(n, bytes) else n for n in f["items/name"][:]]
text = [n.decode() if isinstance(n, bytes) else n for n in f["items/text"][:]]
kind = f["documents/kind"][:]; split = f["items/split"][:]
held = st >= int(f.attrs["heldout_start"])
assert held.any() and (~held).any()
tr, he = set(item[~held]), set(item[held])
assert not tr & he, sorted(tr & he)[:5]
assert (split[item] == held).all()          # each document lies in its item's split
kinds = {n.split(":")[0] for n in name}
assert kinds == {"image", "fortune", "caption", "sentence"}, kinds
for k in sorted(kinds):
    a = {name[i] for i in tr if name[i].startswith(k + ":")}
    b = {name[i] for i in he if name[i].startswith(k + ":")}
    assert a and b and not a & b, k
# a spoken sentence's words are never heard in both splits
sp = kind >= 3
a = {text[i] for i in item[sp & ~held]}; b = {text[i] for i in item[sp & held]}
assert a and b and not a & b
PY

check "text: BPE decodes every fortune and aligned sentence back to its source text" $PY - "$SCRATCH/a.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:].astype(np.int64); st = f["documents/start"][:].astype(np.int64)
end = np.append(st[1:], t.size)
kind = f["documents/kind"][:]; item = f["documents/item"][:]
text = [n.decode() if isinstance(n, bytes) else n for n in f["items/text"][:]]
merges = f["text/merges"][:].astype(int); first = int(f["text/merges"].attrs["first_id"])
table = [bytes([b]) for b in range(256)]
for a, b in merges:
    table.append(table[a] + table[b])
hi = int(f.attrs["vocab_hi"][0])
n = 0
for s, e, k, it in zip(st, end, kind, item):
    if k in (0, 4, 5):   # text, text+speech, speech+text
        ids = [x - first for x in t[s:e] if first <= x < hi]
        assert b"".join(table[i] for i in ids).decode() == text[it], (k, text[it])
        n += 1
assert n > 100, n
PY

# Reconstruction from the codebook against the original pixels of the held-out
# images, read here from the IDX files. Bound: RMSE (pixels in [0, 1]) below 0.15
# with 32 codes of 4x4 (measured 0.116 here; 0.105 at 64 codes, 0.076 at 512) and
# below half that of the best one-code codebook, the mean train patch (measured 0.33).
check "image: held-out reconstruction RMSE < 0.15 and < 0.5 x the one-code codebook's" \
    $PY - "$SCRATCH/a.h5" <<'PY'
import gzip, sys, h5py, numpy as np
d = "/usr/share/datasets/fashion-mnist/"
imgs = np.concatenate([np.frombuffer(gzip.open(d + p + "-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
                       .reshape(-1, 28, 28) for p in ("train", "t10k")]) / 255.0
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:].astype(np.int64); st = f["documents/start"][:].astype(np.int64)
end = np.append(st[1:], t.size)
name = [n.decode() if isinstance(n, bytes) else n for n in f["items/name"][:]]
cb = f["image/codebook"][:].astype(np.float64); lo = int(f["image/codebook"].attrs["first_id"])
split = f["items/split"][:]
held = int(f.attrs["heldout_start"])
orig, rec = [], []
for s, e, it in zip(st, end, f["documents/item"][:]):
    if name[it].startswith("image:") and s >= held:
        codes = [x - lo for x in t[s:e] if lo <= x < lo + len(cb)]
        assert len(codes) == 49
        rec.append(cb[codes].reshape(7, 7, 4, 4).transpose(0, 2, 1, 3).reshape(28, 28))
        orig.append(imgs[int(name[it].split(":")[1])])
orig, rec = np.array(orig), np.array(rec)
train_ids = [int(n.split(":")[1]) for n, sp in zip(name, split) if n.startswith("image:") and sp == 0]
mean_patch = imgs[train_ids].reshape(-1, 7, 4, 7, 4).mean(axis=(0, 1, 3))
one = np.sqrt(((orig.reshape(-1, 7, 4, 7, 4) - mean_patch[None, None, :, None, :]) ** 2).mean())
rmse = np.sqrt(((rec - orig) ** 2).mean())
print("# %d held-out images: RMSE %.4f, one-code codebook %.4f" % (len(orig), rmse, one))
assert len(orig) >= 10 and rmse < 0.15 and rmse < 0.5 * one, (rmse, one)
PY

# Speech units carry information. (1) A unit bigram model (add-1/2, fitted on the
# train split) predicts held-out units with at least 1 bit less cross-entropy than
# the unigram model fitted the same way (measured here: 5.49 -> 3.04 bits).
# (2) Two voices speaking the same sentence share more units than those voices
# speaking different sentences: multiset Jaccard of the unit counts, each
# same-sentence pair against the second voice speaking another sentence; mean ratio
# >= 1.2 and the same sentence ahead in >= 60% of pairs (measured here: 0.330 vs
# 0.234, ratio 1.41, ahead in 78% of 60 pairs; 2.6x at 500 units on the real corpus).
check "speech: bigram held-out entropy >= 1 bit below unigram; same sentence shares more units" \
    $PY - "$SCRATCH/a.h5" <<'PY'
import sys, h5py, numpy as np
from collections import defaultdict
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:].astype(np.int64); st = f["documents/start"][:].astype(np.int64)
end = np.append(st[1:], t.size)
lo = int(f["speech/centroids"].attrs["first_id"]); K = len(f["speech/centroids"])
split = f["items/split"][:]
utt = []
for s, e, k, it, v in zip(st, end, f["documents/kind"][:], f["documents/item"][:], f["documents/voice"][:]):
    if k >= 3:
        x = t[s:e]
        utt.append((int(it), int(v), x[(x >= lo) & (x < lo + K)] - lo))
tr = [u for it, v, u in utt if split[it] == 0]
he = [u for it, v, u in utt if split[it] == 1]
uni = np.bincount(np.concatenate(tr), minlength=K) + 0.5
uni /= uni.sum()
big = np.full((K, K), 0.5)
for u in tr:
    np.add.at(big, (u[:-1], u[1:]), 1)
big /= big.sum(1, keepdims=True)
h_uni = -np.log2(np.concatenate([uni[u[1:]] for u in he])).mean()
h_big = -np.log2(np.concatenate([big[u[:-1], u[1:]] for u in he])).mean()
print("# held-out speech: %d units; unigram %.3f bits, bigram %.3f bits" % (sum(len(u) - 1 for u in he), h_uni, h_big))
assert h_big <= h_uni - 1.0, (h_uni, h_big)

def share(a, b):
    ca, cb = np.bincount(a, minlength=K), np.bincount(b, minlength=K)
    return np.minimum(ca, cb).sum() / np.maximum(ca, cb).sum()
by_item, by_voice = defaultdict(list), defaultdict(list)
for i, (it, v, u) in enumerate(utt):
    by_item[it].append(i)
    by_voice[v].append(i)
rng = np.random.default_rng(0)
same, other = [], []
for it, ix in sorted(by_item.items()):
    if len(ix) < 2:
        continue
    a, b = ix[0], ix[1]
    assert utt[a][1] != utt[b][1]                 # renditions use different voices
    pool = [j for j in by_voice[utt[b][1]] if utt[j][0] != it]
    c = pool[rng.integers(len(pool))]
    same.append(share(utt[a][2], utt[b][2]))
    other.append(share(utt[a][2], utt[c][2]))
same, other = np.array(same), np.array(other)
print("# %d sentence pairs: shared units %.3f (same sentence) vs %.3f (other sentence), ahead in %.0f%%"
      % (len(same), same.mean(), other.mean(), 100 * (same > other).mean()))
assert len(same) >= 30 and same.mean() >= 1.2 * other.mean() and (same > other).mean() >= 0.6
PY

# Trains on it: every modality gets a finite loss, train and held-out.
cat >"$SCRATCH/train.ini" <<INI
[run]
out_dir = $SCRATCH/results
[model]
seq_len = 64
[data]
source = file
path = $SCRATCH/a.h5
modalities = text,image,speech
mix = 1,1,1
[train]
steps = 10
global_batch = 4
[log]
every = 2
eval_every = 5
quiet = true
INI
if timeout 300 $MPIRUN 2 "$MOTSCALE" train "$SCRATCH/train.ini" run.name=c </dev/null >"$SCRATCH/train.out" 2>&1; then
    ok "trains on the corpus (2 ranks)"
else
    not_ok "trains on the corpus (2 ranks)"
    sed 's/^/# /' "$SCRATCH/train.out" | tail -5
fi
check "... with finite per-modality losses, train and held-out" $PY - "$SCRATCH/results/c/run.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
for k in ("metrics/loss_by_modality", "eval/loss_by_modality"):
    x = f[k][:]
    assert x.shape[0] >= 2 and x.shape[1] == 3 and np.isfinite(x[-1]).all(), (k, x)
PY

# docs/data.md lists every [corpus] key with its default, as --keys prints them.
"$MOTSCALE" data build --keys >"$SCRATCH/keys.md"
check "docs/data.md lists every corpus key as data build --keys prints it" sh -c "
    n=\$(grep -c '^| \`corpus\.' '$SCRATCH/keys.md'); [ \"\$n\" -gt 15 ] || exit 1
    grep '^| \`corpus\.' '$SCRATCH/keys.md' | while IFS= read -r l; do grep -qxF \"\$l\" docs/data.md || exit 1; done"

# bad input: one line naming the key, exit 2, no file left behind
printf '[corpus]\nimages = 10\nbogus = 1\n' >"$SCRATCH/bad.ini"
expect_status 2 "unknown key" "$MOTSCALE" data build "$SCRATCH/bad.ini" -o "$SCRATCH/x.h5"
check "... named with file and line, in one line" sh -c \
    "grep -q 'bad.ini:3: corpus.bogus: unknown key' '$SCRATCH/last.out' && [ \$(wc -l <'$SCRATCH/last.out') -eq 1 ]"
expect_status 2 "bad value" "$MOTSCALE" data build "$SCRATCH/c.ini" corpus.patch=5 -o "$SCRATCH/x.h5"
check "... naming corpus.patch" grep -q 'corpus.patch: expected one of' "$SCRATCH/last.out"
printf '[corpus]\nseed = 1\n[data]\nmix = 1,1\n' >"$SCRATCH/sec.ini"
expect_status 2 "a training section in a corpus INI" "$MOTSCALE" data build "$SCRATCH/sec.ini" -o "$SCRATCH/x.h5"
expect_status 2 "renditions beyond the voices" "$MOTSCALE" data build "$SCRATCH/c.ini" corpus.renditions=5 -o "$SCRATCH/x.h5"
expect_status 2 "a voice espeak-ng does not have" "$MOTSCALE" data build "$SCRATCH/c.ini" corpus.voices=en-us,xx-nope -o "$SCRATCH/x.h5"
check "... naming corpus.voices in one line" sh -c \
    "grep -q 'corpus.voices' '$SCRATCH/last.out' && [ \$(wc -l <'$SCRATCH/last.out') -eq 1 ]"
expect_status 2 "no output" "$MOTSCALE" data build "$SCRATCH/c.ini"
expect_status 2 "an output directory that does not exist" "$MOTSCALE" data build "$SCRATCH/c.ini" -o "$SCRATCH/no/x.h5"
check "nothing written by the refused builds" test ! -e "$SCRATCH/x.h5"
expect_status 2 "inspect --png on a file without a codebook" \
    sh -c "'$MOTSCALE' data gen tests/e2e/train.ini -o '$SCRATCH/g.h5' >/dev/null && '$MOTSCALE' data inspect '$SCRATCH/g.h5' --png '$SCRATCH/g.png'"
