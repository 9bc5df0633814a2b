"""Speech: espeak-ng speaks a sentence (22050 Hz), resampled to 16 kHz; 40 ms frames
(25 Hz, the rate of the MoT paper's speech tokenizer) become MFCC or log-mel
features; k-means over the train split's frames gives the units."""
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.fft import dct
from scipy.signal import resample_poly
from sklearn.cluster import KMeans

from corpus_config import die

RATE = 16000
HOP = 640                  # 40 ms at 16 kHz: 25 frames a second
NFFT = 1024
NMEL = 40
NMFCC = 12                 # c1..c12; c0 (loudness) is left out
SILENCE_DB = 35            # leading/trailing frames this far below the loudest are cut


def synth(espeak, voice, rate, text):
    """int16 samples at 16 kHz of espeak-ng speaking text."""
    try:
        r = subprocess.run([espeak, "-v", voice, "-s", str(rate), "--stdout"], input=text.encode("utf-8"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as e:
        die("corpus.espeak: cannot run %s: %s (install espeak-ng)" % (espeak, e.strerror))
    wav = r.stdout
    if r.returncode != 0 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        die("corpus.voices: %s -v %s -s %d failed: %s" % (espeak, voice, rate, " ".join(r.stderr.decode().split())[:200]))
    sr = int.from_bytes(wav[24:28], "little")
    at = wav.find(b"data", 12)
    x = np.frombuffer(wav[at + 8:len(wav) - (len(wav) - at - 8) % 2], "<i2").astype(np.float64)
    if sr != 22050:
        raise RuntimeError("%s wrote %d Hz; expected 22050" % (espeak, sr))
    return resample_poly(x, 320, 441)  # 22050 * 320 / 441 = 16000


def synth_all(espeak, jobs, workers=2):
    """jobs: [(voice, rate, text)]; results in the same order."""
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(lambda j: synth(espeak, *j), jobs))


def _mel_bank():
    def mel(f):
        return 2595 * np.log10(1 + f / 700)
    edges = 700 * (10 ** (np.linspace(mel(60), mel(7600), NMEL + 2) / 2595) - 1)
    freqs = np.arange(NFFT // 2 + 1) * RATE / NFFT
    bank = np.zeros((NMEL, freqs.size))
    for i in range(NMEL):
        lo, mid, hi = edges[i:i + 3]
        bank[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return bank


BANK = _mel_bank()
WINDOW = np.hanning(HOP)


def features(x, kind):
    """[frames, dims]: one row per 40 ms (Hann window of 40 ms, hop 40 ms), silence
    at both ends cut, utterance mean removed (so voices differ less)."""
    n = len(x) // HOP
    frames = x[:n * HOP].reshape(n, HOP) * WINDOW
    power = np.abs(np.fft.rfft(frames, NFFT)) ** 2
    energy = 10 * np.log10(power.sum(1) + 1e-9)
    loud = np.nonzero(energy > energy.max() - SILENCE_DB)[0]
    logmel = np.log(power[loud[0]:loud[-1] + 1] @ BANK.T + 1e-6)
    if kind == "logmel":
        f = logmel
    else:
        c = dct(logmel, type=2, norm="ortho", axis=1)[:, 1:NMFCC + 1]
        d = np.gradient(c, axis=0) if c.shape[0] > 1 else np.zeros_like(c)
        f = np.hstack([c, d])
    return f - f.mean(0)


def fit_units(train_feats, k, seed, sample):
    """Centroids [k, dims] of standardised frames, with the mean and std used."""
    x = np.vstack(train_feats)
    mean, std = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / std
    rng = np.random.default_rng([seed, 2])
    if z.shape[0] > sample:
        z = z[np.sort(rng.choice(z.shape[0], sample, replace=False))]
    km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=seed).fit(z)
    return km.cluster_centers_.astype(np.float32), mean.astype(np.float32), std.astype(np.float32)


def units(f, centroids, mean, std, collapse):
    z = ((f - mean) / std).astype(np.float32)
    d = (centroids ** 2).sum(1)[None, :] - 2 * z @ centroids.T
    u = d.argmin(1)
    if collapse and u.size:
        u = u[np.concatenate([[True], u[1:] != u[:-1]])]
    return u
