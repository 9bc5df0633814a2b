#!/bin/sh
# `motscale flops`: --help; for two configs, dense and MoT of the same width, the
# printed parameters and FLOPs equal numbers worked out here by hand from
# DESIGN.md §2-3 and docs/model.md (not from the C code): identical FLOPs per token,
# MoT non-embedding parameters = K x dense. Bad input exits 2.
. tests/lib.sh

expect_status 0 "flops --help exits 0" "$MOTSCALE" flops --help
check "... and prints the usage" grep -q 'usage: motscale flops' "$SCRATCH/last.out"

# A: the default width with the default text,image data. B: other shapes, three
# modalities, QK-norm on, non-default vocabulary sizes and sequence length.
cat >"$SCRATCH/a.ini" <<'INI'
[model]
d_model = 64
n_layers = 2
n_heads = 4
d_ff = 256
seq_len = 64
[data]
modalities = text,image
mix = 1,1
[train]
global_batch = 8
steps = 300
INI
cat >"$SCRATCH/b.ini" <<'INI'
[model]
d_model = 96
n_layers = 3
n_heads = 6
d_ff = 320
seq_len = 48
qk_norm = true
[data]
modalities = text,image,speech
mix = 2,1,1
vocab_text = 100
vocab_image = 50
vocab_speech = 40
[train]
global_batch = 6
steps = 10
INI

# value LABEL: the number at the end of the line that starts with LABEL (two spaces
# of indent, as `motscale flops` prints it)
value() { sed -n "s/^  $2  *\([0-9.e+]*\)\$/\1/p" "$1"; }

# Hand formulas, one per printed line. V is the joint vocabulary: the sum of the
# listed modalities' vocabulary sizes (docs/data.md; text's range holds the
# boundary tokens). Per tower, per layer: W_q, W_k, W_v, W_o (d x d each), W_1, W_3
# (d x f), W_2 (f x d), attention and FFN norms (d each), q/k norms (d each, with
# qk_norm); plus the tower's final norm (d). Embedding and head: V x d each.
# FLOPs per token (a multiply-add is 2): forward per layer 8 d^2 + 6 d f + 2 s d,
# head 2 d V; training 3 x forward.
expect() { # D L F S V QK K  -> "label value" lines
    D=$1 L=$2 F=$3 S=$4 V=$5 QK=$6 K=$7
    per_layer=$((4 * D * D + 3 * D * F + 2 * D + QK * 2 * D))
    tower=$((L * per_layer + D))
    emb=$((2 * V * D))
    fwd=$((L * (8 * D * D + 6 * D * F + 2 * S * D) + 2 * D * V))
    echo "embedding + head $emb"
    echo "per tower $tower"
    echo "non-embedding $((K * tower))"
    echo "total $((emb + K * tower))"
    echo "active per token $((emb + tower))"
    echo "forward q,k,v,o $((L * 8 * D * D))"
    echo "forward SwiGLU $((L * 6 * D * F))"
    echo "forward attention $((L * 2 * S * D))"
    echo "forward head $((2 * D * V))"
    echo "forward $fwd"
    echo "backward $((2 * fwd))"
    echo "train $((3 * fwd))"
}

compare() { # name printed-output D L F S V QK K
    name=$1 out=$2
    shift 2
    bad=0
    expect "$@" >"$SCRATCH/want"
    while read -r line; do
        want=${line##* }
        label=${line% *}
        got=$(value "$out" "$label")
        if [ "$got" != "$want" ]; then
            echo "# $name: '$label' printed '$got', by hand $want"
            bad=1
        fi
    done <"$SCRATCH/want"
    [ $bad -eq 0 ]
}

# A: d 64, L 2, f 256, s 64, V = 96 + 64 = 160, no qk_norm; dense K=1, MoT K=2
"$MOTSCALE" flops "$SCRATCH/a.ini" model.kind=dense >"$SCRATCH/a_dense" 2>&1
ok_a=$?
"$MOTSCALE" flops "$SCRATCH/a.ini" model.kind=mot >"$SCRATCH/a_mot" 2>&1
ok_m=$?
check "flops A dense, A mot exit 0" [ $ok_a -eq 0 -a $ok_m -eq 0 ]
check "A dense: every number equals the hand count" compare "A dense" "$SCRATCH/a_dense" 64 2 256 64 160 0 1
check "A mot: every number equals the hand count (K = 2)" compare "A mot" "$SCRATCH/a_mot" 64 2 256 64 160 0 2

# B: d 96, L 3, f 320, s 48, V = 100 + 50 + 40 = 190, qk_norm; dense K=1, MoT K=3,
# and the leave-one-out grouping text,image | speech K=2
"$MOTSCALE" flops "$SCRATCH/b.ini" model.kind=dense >"$SCRATCH/b_dense" 2>&1
ok_a=$?
"$MOTSCALE" flops "$SCRATCH/b.ini" model.kind=mot >"$SCRATCH/b_mot" 2>&1
ok_m=$?
"$MOTSCALE" flops "$SCRATCH/b.ini" model.kind=towers "model.towers=text,image | speech" >"$SCRATCH/b_loo" 2>&1
ok_l=$?
check "flops B dense, mot, towers exit 0" [ $ok_a -eq 0 -a $ok_m -eq 0 -a $ok_l -eq 0 ]
check "B dense: every number equals the hand count" compare "B dense" "$SCRATCH/b_dense" 96 3 320 48 190 1 1
check "B mot: every number equals the hand count (K = 3)" compare "B mot" "$SCRATCH/b_mot" 96 3 320 48 190 1 3
check "B towers text,image | speech: every number equals the hand count (K = 2)" \
    compare "B loo" "$SCRATCH/b_loo" 96 3 320 48 190 1 2

# The two claims of DESIGN.md §1 directly on the printed numbers.
for c in a b; do
    K=2
    [ $c = b ] && K=3
    td=$(value "$SCRATCH/${c}_dense" train)
    tm=$(value "$SCRATCH/${c}_mot" train)
    check "$c: MoT and dense print identical train FLOPs per token ($td)" [ -n "$td" -a "$td" = "$tm" ]
    nd=$(value "$SCRATCH/${c}_dense" non-embedding)
    nm=$(value "$SCRATCH/${c}_mot" non-embedding)
    check "$c: MoT non-embedding params = $K x dense ($nm = $K x $nd)" [ -n "$nd" -a "$nm" = "$((K * ${nd:-0}))" ]
    ed=$(value "$SCRATCH/${c}_dense" "embedding + head")
    em=$(value "$SCRATCH/${c}_mot" "embedding + head")
    check "$c: embedding and head are shared (same count, $ed)" [ -n "$ed" -a "$ed" = "$em" ]
done

# per step: global_batch x seq_len tokens x train FLOPs per token (A: 8 x 64 x 897024)
check "A: per-step train FLOPs = 8 x 64 x train per token" \
    $PY -c "import sys; v=float(sys.argv[1]); e=8*64*897024; sys.exit(abs(v-e)>1e-5*e)" \
    "$(value "$SCRATCH/a_dense" 'train FLOPs')"

expect_status 2 "flops: missing config file exits 2" "$MOTSCALE" flops "$SCRATCH/none.ini"
expect_status 2 "flops: bad override exits 2" "$MOTSCALE" flops "$SCRATCH/a.ini" model.d_model=abc
check "... naming the key" grep -q 'model.d_model' "$SCRATCH/last.out"
expect_status 2 "flops: no config exits 2" "$MOTSCALE" flops
