"""The corpus side of `motscale data build` and `motscale data inspect --png`, run by
the motscale binary on Debian's /usr/bin/python3 (docs/data.md):

    motscale_corpus.py build CORPUS.ini [corpus.key=value ...] -o FILE.h5 --source TEXT
    motscale_corpus.py png FILE.h5 OUT.png N
    motscale_corpus.py keys

Exit status: 0 done, 2 bad input (one line naming the key), 1 anything else."""
import os
import sys

# one thread for every library: the build is deterministic and shares the machine
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import corpus_config  # noqa: E402


def main(argv):
    if argv[:1] == ["keys"]:
        print(corpus_config.keys_markdown())
        return 0
    if argv[:1] == ["png"] and len(argv) == 4:
        import grid
        n, rmse = grid.write_png(argv[1], argv[2], int(argv[3]))
        print("%s: %d held-out images beside their reconstructions (RMSE %.4f, pixels in [0, 1])" % (argv[2], n, rmse))
        return 0
    if argv[:1] != ["build"]:
        corpus_config.die("usage: motscale_corpus.py build|png|keys ...")
    ini, out, source, over = None, None, "motscale data build", []
    args = iter(argv[1:])
    for a in args:
        if a in ("-o", "--output"):
            out = next(args, None)
        elif a == "--source":
            source = next(args, source)
        elif "=" in a and ini:
            over.append(a)
        elif ini is None and not a.startswith("-"):
            ini = a
        else:
            corpus_config.die("unexpected argument '%s' (see --help)" % a)
    if not ini or not out:
        corpus_config.die("needs CORPUS.ini and -o FILE.h5 (see --help)")
    cfg, text = corpus_config.load(ini, over)
    corpus_config.check_voices(cfg["espeak"], cfg["voices"])
    where = os.path.dirname(os.path.abspath(out))
    if not os.access(where, os.W_OK):
        corpus_config.die("-o %s: cannot write in %s" % (out, where))
    import compose
    compose.build(cfg, text, out, source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
