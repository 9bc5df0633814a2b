#!/bin/sh
# Closed-form collective tests (tests/unit/mpi_collectives.c) under mpirun -np 4:
# the mesh equation and its communicators at (tp, dp) = (1,4), (2,2), (4,1), the
# conjugate TP operators f and g and tp_sum_double on rank-valued inputs, and the
# bucketed DP gradient all-reduce (several buckets, stage calls as backward makes
# them) give exact sums, as do the ZeRO-1 reduce-scatter (owned shards) and all-gather. World rank 0 prints cmocka's TAP; each of its lines becomes
# one TAP line here, and a crash or a non-zero exit without a failed case is a failure.
. tests/lib.sh
BIN=$PWD/${BUILD:-build}/tests/mpi_collectives

if [ ! -x "$BIN" ]; then
    not_ok "$BIN not built (make tests)"
    exit 1
fi

# timeout: a rank stuck in a collective must fail the test, not hang make check
timeout 120 $MPIRUN 4 -x CMOCKA_MESSAGE_OUTPUT=TAP "$BIN" >"$SCRATCH/out" 2>&1
rc=$?
cases=0
while IFS= read -r line; do
    case $line in
    "ok "*)
        cases=$((cases + 1))
        ok "mpi_collectives (np 4): ${line#ok [0-9]* - }"
        ;;
    "not ok "*)
        cases=$((cases + 1))
        not_ok "mpi_collectives (np 4): ${line#not ok [0-9]* - }"
        ;;
    esac
done <"$SCRATCH/out"
# the first mismatch each failing rank found
grep 'mismatches, first' "$SCRATCH/out" | sed 's/^/# /'
if [ "$cases" -ne 10 ] || [ "$rc" -ne 0 ]; then
    not_ok "mpi_collectives ran all 10 cases and exited 0 (got $cases cases, exit $rc)"
    grep -v '^ok ' "$SCRATCH/out" | head -20 | sed 's/^/# /'
    exit 1
fi
exit 0
