"""The [corpus] section of a corpus INI (docs/data.md, "data build"): one key table
that drives parsing, defaults, checks, `--keys` and the docs; bad input is one line
naming the file, line and key, and exit status 2."""
import configparser
import re
import subprocess
import sys

EXIT_BADINPUT = 2

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot"]
FORTUNE_FILES = ("computers,cookie,debian,definitions,disclaimer,drugs,education,ethnic,food,"
                 "fortunes,goedel,humorists,kids,knghtbrd,law,linux,linuxcookie,literature,love,"
                 "magic,medicine,men-women,miscellaneous,news,paradoxum,people,perl,pets,"
                 "platitudes,politics,pratchett,riddles,science,songs-poems,sports,startrek,tao,"
                 "wisdom,work,zippy")


def _int(lo, hi=None):
    def conv(s):
        v = int(s)
        if v < lo or (hi is not None and v > hi):
            raise ValueError("expected an integer in [%d, %s]" % (lo, hi if hi is not None else "inf"))
        return v
    return conv


def _frac(s):
    v = float(s)
    if not 0 < v < 1:
        raise ValueError("expected a number in (0, 1)")
    return v


def _bool(s):
    if s.lower() in ("true", "yes", "1", "on"):
        return True
    if s.lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError("expected true or false")


def _words(s):
    v = [w.strip() for w in s.split(",")]
    if not v or any(not w for w in v):
        raise ValueError("expected a comma list without empty items")
    return v


def _ints(lo):
    def conv(s):
        v = [_int(lo)(w) for w in _words(s)]
        return v
    return conv


def _mix(s):
    v = [float(w) for w in _words(s)]
    if len(v) != 3 or any(x < 0 for x in v) or sum(v) <= 0:
        raise ValueError("expected 3 non-negative token shares text,image,speech")
    return v


def _choice(*names):
    def conv(s):
        if s not in names:
            raise ValueError("expected one of " + "|".join(names))
        return s
    return conv


# name, converter, default, meaning
KEYS = [
    ("seed", _int(0), "1", "seed of every draw: item choice, splits, voices, k-means, document order"),
    ("images", _int(1, 70000), "2000", "Fashion-MNIST images used (of 70,000: train then t10k)"),
    ("fortunes", _int(1), "1000", "fortunes used as text-only documents (each at most max_fortune_bytes)"),
    ("fortune_files", _words, FORTUNE_FILES, "fortune files read from fortune_dir"),
    ("max_fortune_bytes", _int(16), "400", "longer fortunes are skipped"),
    ("spoken_captions", _int(0), "100", "image captions spoken (each unique to its image)"),
    ("spoken_sentences", _int(0), "300", "sentences of the chosen fortunes spoken (3 to 16 words)"),
    ("voices", _words, "en-us,en-gb,en-us+f3,en-gb-scotland", "espeak-ng voices"),
    ("rates", _ints(80), "150,190", "espeak-ng speaking rates, words per minute"),
    ("renditions", _int(1), "2", "renditions of each spoken sentence, each by a different voice at a drawn rate"),
    ("text_vocab", _int(262, 65536), "1024", "text id range: 5 boundary tokens, 256 bytes, then BPE merges"),
    ("image_vocab", _int(2, 65536), "512", "image codebook size (k-means on patches)"),
    ("patch", _choice("2", "4", "7", "14"), "4", "patch side in pixels; a 28x28 image is (28/patch)^2 codes"),
    ("speech_vocab", _int(2, 65536), "500", "speech units (k-means on 40 ms frames)"),
    ("speech_features", _choice("mfcc", "logmel"), "mfcc", "frame features: 12 MFCCs + deltas, or 40 log-mel bands"),
    ("collapse", _bool, "true", "collapse consecutive duplicate speech units"),
    ("mix", _mix, "6,6,1", "target token shares text,image,speech of each split"),
    ("heldout", _frac, "0.1", "share of each source's items in the held-out split"),
    ("kmeans_sample", _int(100), "60000", "at most this many patches (frames) fit each k-means"),
    ("fashion_mnist_dir", str, "/usr/share/datasets/fashion-mnist", "IDX files of dataset-fashion-mnist"),
    ("fortune_dir", str, "/usr/share/games/fortunes", "fortune files of the fortunes package"),
    ("espeak", str, "espeak-ng", "the speech synthesiser"),
]


def die(msg, verb="motscale data build"):
    """Bad input: one line, exit status 2."""
    print(verb + ": " + msg, file=sys.stderr)
    sys.exit(EXIT_BADINPUT)


def keys_markdown():
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name, _, default, what in KEYS:
        rows.append("| `corpus.%s` | `%s` | %s |" % (name, default, what))
    return "\n".join(rows)


def _lines(path):
    """(section, key) -> line number, for messages."""
    where, section = {}, None
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            m = re.match(r"\s*\[([^\]]*)\]", line)
            if m:
                section = m.group(1).strip()
                where.setdefault((section, None), i)
                continue
            m = re.match(r"\s*([^=;#\s][^=]*?)\s*=", line)
            if m:
                where.setdefault((section, m.group(1).strip().lower()), i)
    return where


def load(path, overrides):
    """The resolved key table as a dict, and the resolved INI text (provenance)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None, strict=True)
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as e:
        die("%s: cannot read: %s" % (path, e.strerror))
    except (configparser.Error, UnicodeDecodeError) as e:
        die("%s: not a valid INI file: %s" % (path, str(e).splitlines()[0]))
    where = _lines(path)
    known = {k[0]: k for k in KEYS}
    for section in cp.sections():
        if section != "corpus":
            die("%s:%d: [%s]: unknown section; a corpus INI has only [corpus]"
                % (path, where.get((section, None), 0), section))
    raw = {}
    if cp.has_section("corpus"):
        for key, val in cp.items("corpus"):
            raw[key] = (val, "%s:%d" % (path, where.get(("corpus", key), 0)))
    for o in overrides:
        k, _, v = o.partition("=")
        sec, _, key = k.partition(".")
        if sec != "corpus" or not key:
            die("override '%s': expected corpus.key=value" % o)
        raw[key.strip().lower()] = (v.strip(), "override " + o)
    cfg = {}
    for key, (val, at) in raw.items():
        if key not in known:
            die("%s: corpus.%s: unknown key (motscale data build --keys lists them)" % (at, key))
    for name, conv, default, _ in KEYS:
        val, at = raw.get(name, (default, "default"))
        try:
            cfg[name] = conv(val)
        except ValueError as e:
            msg = str(e) if not str(e).startswith("invalid literal") else "not a number"
            die("%s: corpus.%s: %s, got '%s'" % (at, name, msg, val))
    cfg["patch"] = int(cfg["patch"])
    if cfg["renditions"] > len(cfg["voices"]):
        die("%s: corpus.renditions: %d renditions need as many voices; corpus.voices has %d"
            % (raw.get("renditions", ("", "default"))[1], cfg["renditions"], len(cfg["voices"])))
    text = "[corpus]\n" + "".join("%s = %s\n" % (n, raw.get(n, (d, ""))[0]) for n, _, d, _ in KEYS)
    return cfg, text


def check_voices(espeak, voices):
    """Every voice exists (espeak-ng -q speaks nothing), before any other work."""
    for v in voices:
        try:
            r = subprocess.run([espeak, "-v", v, "-q", "a"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               check=False)
        except OSError as e:
            die("corpus.espeak: cannot run %s: %s (install espeak-ng)" % (espeak, e.strerror))
        if r.returncode != 0:
            die("corpus.voices: espeak-ng has no voice '%s' (espeak-ng --voices lists them)" % v)
