#!/usr/bin/env bash
# An installed binary works with its source tree gone: build `recur` from a copy of the tree at
# another path, delete the copy, then run `recur models` and translate with both bundled models
# from another directory; the outputs must equal those of the normal build (target/release).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
normal="$repo/target/release/recur"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git archive --format=tar HEAD | (mkdir "$work/tree" && tar -x -C "$work/tree")
# The deps' build cache is shared; the workspace crates are rebuilt from the copy.
CARGO_TARGET_DIR="$repo/target/installed" cargo install --quiet --locked \
    --path "$work/tree/crates/recur-cli" --root "$work/root"
rm -rf "$work/tree"
installed="$work/root/bin/recur"

mkdir "$work/elsewhere" && cd "$work/elsewhere"
words=$'ghar\nkitaab\nmain ghar ja raha hoon\nrecurrent\nhello'
"$installed" models | tee models.txt
grep -q '^hi-translit ' models.txt && grep -q '^en-g2p ' models.txt
for model in hi-translit en-g2p; do
    got=$(printf '%s\n' "$words" | "$installed" translate --model "$model" --beam 4)
    want=$(printf '%s\n' "$words" | "$normal" translate --model "$model" --beam 4)
    if [ "$got" != "$want" ]; then
        echo "installed binary differs on $model:"; diff <(echo "$want") <(echo "$got") || true
        exit 1
    fi
    printf '%s: %s\n' "$model" "$(echo "$got" | tr '\n' '|')"
done
# A run directory stands for its best/ checkpoint; an unknown name lists the known ones.
if "$installed" translate --model no-such-model </dev/null 2>err.txt; then exit 1; fi
grep -q 'known: .*hi-translit' err.txt
echo "installed binary: ok"
