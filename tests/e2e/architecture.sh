#!/bin/sh
# The layering of docs/architecture.md, checked on the sources: no wire runs back up,
# HDF5 is called through its one layer, only the top-level modules see the whole
# configuration, and no function of the trainer or the model grows past the limit.
. tests/lib.sh

# files_matching PATTERN DIR...: the files under DIR that contain PATTERN
files_matching() { pat=$1; shift; grep -rlE "$pat" "$@" 2>/dev/null | sort | tr '\n' ' '; }

h5=$(files_matching 'H5A[a-z_]*\(|H5Eset_auto|H5Pset_fapl_mpio' src analysis include | sed 's|src/io/h5.c ||')
check "no H5A*, H5Eset_auto or H5Pset_fapl_mpio call outside src/io/h5.c${h5:+ (found in $h5)}" [ -z "$h5" ]
up=$(files_matching '#include "motscale/cli.h"' analysis)
check "analysis/ includes nothing from src/cli${up:+ ($up)}" [ -z "$up" ]
up=$(files_matching '#include "motscale/(model|tower)\.h"' src/parallel include/motscale/dp.h include/motscale/tp.h include/motscale/mesh.h include/motscale/scalapack.h)
check "src/parallel/ does not include the model header${up:+ ($up)}" [ -z "$up" ]
up=$(files_matching '#include "motscale/analysis.h"' src/train include/motscale/train.h)
check "src/train/ includes no analysis header${up:+ ($up)}" [ -z "$up" ]
cfg=$(files_matching '#include "motscale/config.h"' src include analysis |
    sed 's|src/io/config.c ||; s|src/io/sweep.c ||; s|src/cli/[a-z_]*\.c ||g; s|include/motscale/train.h ||; s|include/motscale/sweep.h ||')
check "config.h only in config, sweep, cli and the trainer's top${cfg:+ (also $cfg)}" [ -z "$cfg" ]
check "src/train/train.c is the one train/ file that sees train.h (and so config.h)" \
    [ "$(files_matching '#include "motscale/train.h"' src/train)" = "src/train/train.c " ]

# No function in src/train/ or src/model/ longer than FUNC_MAX lines (signature to
# closing brace); the longest are listed in docs/architecture.md.
FUNC_MAX=120
check "no function in src/train/ or src/model/ longer than $FUNC_MAX lines" \
    $PY - "$FUNC_MAX" src/train/*.c src/model/*.c <<'PYEOF'
import re, sys
limit, worst = int(sys.argv[1]), []
for path in sys.argv[2:]:
    lines = open(path).read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_].*\(", line) and not line.rstrip().endswith(";"):
            start = i
        if line.startswith("{") and start is None:
            start = i
        if line.startswith("}") and start is not None:
            worst.append((i - start + 1, path, lines[start].split("(")[0].split()[-1].lstrip("*")))
            start = None
worst.sort(reverse=True)
for n, path, name in worst[:3]:
    print("# %d lines: %s %s" % (n, path, name))
sys.exit(0 if worst and worst[0][0] <= limit else 1)
PYEOF
