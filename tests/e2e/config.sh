#!/bin/sh
# Bad configuration stops `motscale train` before any training: exit status 2 and
# one line naming the file, the line (for keys read from the file) and the key;
# the same through command-line overrides. --help of the program and of train exit
# 0; an unknown verb exits 2.
. tests/lib.sh

expect_status 0 "motscale --help exits 0" "$MOTSCALE" --help
check "... and lists the train verb" grep -q 'train' "$SCRATCH/last.out"
expect_status 0 "motscale train --help exits 0" "$MOTSCALE" train --help
check "... and prints the train usage" grep -q 'usage: motscale train' "$SCRATCH/last.out"
expect_status 2 "an unknown verb exits 2" "$MOTSCALE" frobnicate
check "... naming the verb" grep -q "frobnicate" "$SCRATCH/last.out"
expect_status 2 "no verb exits 2" "$MOTSCALE"

# A valid base: tiny, and never trained by this script unless a check fails to
# stop it (then the run directory shows up, which the last test catches).
OUT="$SCRATCH/runs"
base() { # extra INI lines on stdin are appended to [model]
    cat <<INI
[run]
name = should_not_exist
out_dir = $OUT
[model]
d_model = 32
n_heads = 4
n_layers = 1
d_ff = 64
seq_len = 16
INI
    cat
    cat <<'INI'
[train]
steps = 2
global_batch = 2
[log]
quiet = true
INI
}

# bad_file NAME LINE PATTERN "description" INI-TEXT: INI-TEXT (printf format),
# appended to the base's [model] section, must give exit 2 and one message line
# containing FILE:LINE (FILE alone when LINE is empty) and PATTERN
bad_file() {
    name=$1 line=$2 pat=$3 desc=$4
    f="$SCRATCH/$name.ini"
    printf "$5" | base >"$f"
    expect_status 2 "$desc: exit 2" "$MOTSCALE" train "$f"
    loc="$f"
    [ -n "$line" ] && loc="$f:$line"
    if grep -qF "$loc" "$SCRATCH/last.out" && grep -qF -- "$pat" "$SCRATCH/last.out" &&
        [ "$(grep -c . "$SCRATCH/last.out")" -eq 1 ]; then
        ok "$desc: one line naming $(basename "$loc") and '$pat'"
    else
        not_ok "$desc: one line naming $(basename "$loc") and '$pat'"
        sed 's/^/# got: /' "$SCRATCH/last.out" | head -3
    fi
}

# The base has 9 lines up to "seq_len"; INI-TEXT starts at line 10.
bad_file unknown 10 "model.colour" "unknown key in the file" "colour = blue\n"
bad_file malformed 10 "model.n_layers" "malformed integer in the file" "n_layers = two\n"
bad_file malformed_dbl 10 "model.init_std" "malformed number in the file" "init_std = 0.0.2\n"
bad_file enum 10 "model.kind" "bad enum value in the file" "kind = sparse\n"
bad_file bool 10 "model.qk_norm" "bad boolean in the file" "qk_norm = maybe\n"
bad_file section 11 "optimizer.lr" "unknown section in the file" "[optimizer]\nlr = 1\n"
bad_file garbage 10 "malformed line" "a line that is not key = value" "d_model 32\n"
# combinations are checked after parsing: the line of the key that was set is named
# (a value changed in place: a key given twice is an error of its own, below)
base </dev/null | sed 's/^d_model = 32$/d_model = 34/' >"$SCRATCH/divisible.ini"
expect_status 2 "d_model not divisible by n_heads: exit 2" "$MOTSCALE" train "$SCRATCH/divisible.ini"
check "... naming model.d_model and the line of the later key, with both numbers" \
    grep -q 'divisible.ini:6: model.d_model: 34 is not divisible by model.n_heads = 4' "$SCRATCH/last.out"
base </dev/null | sed 's/^d_model = 32$/d_model = 12/' >"$SCRATCH/odd_head3.ini"
expect_status 2 "odd head dim for RoPE (12 / 4 = 3): exit 2" "$MOTSCALE" train "$SCRATCH/odd_head3.ini"
check "... naming model.n_heads and the odd head dim" grep -q 'odd_head3.ini:.*model.n_heads:.*odd' "$SCRATCH/last.out"
bad_file twice 10 "model.d_model: set twice (first on line 5)" "a key given twice" "d_model = 12\n"

# zero steps in the file's [train] section
base </dev/null | sed 's/^steps = 2$/steps = 0/' >"$SCRATCH/zero.ini"
expect_status 2 "zero steps: exit 2" "$MOTSCALE" train "$SCRATCH/zero.ini"
check "... naming train.steps and its line" grep -q 'zero.ini:11: train.steps' "$SCRATCH/last.out"

expect_status 2 "missing config file: exit 2" "$MOTSCALE" train "$SCRATCH/nonexistent.ini"
check "... naming the file" grep -q 'nonexistent.ini' "$SCRATCH/last.out"

# The same checks through command-line overrides on a valid file.
base </dev/null >"$SCRATCH/good.ini"
G="$SCRATCH/good.ini"
bad_over() { # "override" pattern "description"
    expect_status 2 "$3: exit 2" "$MOTSCALE" train "$G" "$1"
    if grep -qF -- "$2" "$SCRATCH/last.out" && grep -qF -- "override '$1'" "$SCRATCH/last.out" &&
        [ "$(grep -c . "$SCRATCH/last.out")" -eq 1 ]; then
        ok "$3: one line naming '$2'"
    else
        not_ok "$3: one line naming '$2'"
        sed 's/^/# got: /' "$SCRATCH/last.out" | head -3
    fi
}
bad_over model.d_model=abc "model.d_model" "override: malformed number"
bad_over model.colour=blue "model.colour" "override: unknown key"
bad_over optimizer.lr=1 "optimizer.lr" "override: unknown section"
bad_over model.kind=sparse "model.kind" "override: bad enum value"
bad_over parallel.tp_backend=cuda "parallel.tp_backend" "override: bad enum value (tp_backend)"
bad_over model.d_model=34 "model.d_model" "override: d_model not divisible by n_heads"
bad_over model.d_model=12 "model.n_heads" "override: odd head dim for RoPE (12 / 4 = 3)"
bad_over train.steps=0 "train.steps" "override: zero steps"
bad_over train.steps=-3 "train.steps" "override: negative steps"
bad_over modeld_model=32 "modeld_model=32" "override without section.key=value form"
bad_over data.modalities=text,video "data.modalities" "override: unknown modality"
bad_over data.mix=1 "data.mix" "override: mix with the wrong number of shares"
bad_over model.kind=towers "model.towers" "override: towers without a grouping"

# Nothing above may have started a run.
check "no bad config created a run directory" [ ! -e "$OUT/should_not_exist" ]
