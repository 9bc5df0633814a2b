# docs/config.md documents every key with its default: each row that
# `motscale train --keys` prints must stand in docs/config.md exactly.
. tests/lib.sh
"$MOTSCALE" train --keys >"$SCRATCH/keys.md"
missing=0
n=0
while IFS= read -r line; do
    case "$line" in
    "| \`"*)
        n=$((n + 1))
        if ! grep -qxF "$line" docs/config.md; then
            echo "# not in docs/config.md: $line"
            missing=$((missing + 1))
        fi
        ;;
    esac
done <"$SCRATCH/keys.md"
if [ "$n" -gt 40 ] && [ "$missing" -eq 0 ]; then ok "docs/config.md lists all $n keys with their defaults"; else
    not_ok "docs/config.md: $missing of $n keys missing or stale (regenerate with motscale train --keys)"
fi
