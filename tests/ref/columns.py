# Prints the number columns of a run record that a refactor must not move, one line
# per column: "NAME v1 v2 ..." with every value as a hexadecimal float (exact).
# Used by tests/e2e/numbers.sh to compare a run with a kept reference.
import sys

import h5py

COLUMNS = ["metrics/step", "metrics/loss", "metrics/loss_by_modality", "metrics/grad_norm",
           "metrics/lr", "metrics/tokens_by_modality", "metrics/flops", "eval/step",
           "eval/loss", "eval/loss_by_modality"]

with h5py.File(sys.argv[1], "r") as f:
    for name in COLUMNS:
        vals = f[name][()].reshape(-1)
        print(name, " ".join(float(v).hex() for v in vals))
