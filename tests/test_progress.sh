#!/usr/bin/env bash
# test_progress.sh - progress reporting of quantize and perplexity: nothing on a
# pipe by default, a line per 10 % with --progress (ten lines, ending at 100 %), and
# one closing line of statistics either way. A terminal's bar is not tested here
# (stderr is never a terminal under ctest). Needs ../shared (skips without it).
set -u
. "$(dirname "$0")/lib.sh"
test_setup test_progress
F32=$SHARED/models/fortune-3m-f32.gguf
Q8=$SHARED/models/fortune-3m-q8_0.gguf
TEXT=$SHARED/text/fortunes-val.txt
for f in "$F32" "$Q8" "$TEXT"; do [ -f "$f" ] || { echo "SKIP: $f not found"; exit 77; }; done

expect_exit 0 "" quantize "$F32" "$TMP/a.gguf" --type q8_0
grep -q "%" "$TMP/err" && bad "quantize printed progress on a pipe: $(head -3 "$TMP/err")" || ok
[ "$(wc -l <"$TMP/err")" = 1 ] && grep -qE "^quantize: .* bits per weight, [0-9.]+ s$" "$TMP/err" && ok ||
    bad "quantize: not one line of statistics: $(cat "$TMP/err")"

expect_exit 0 "" quantize "$F32" "$TMP/b.gguf" --type q8_0 --progress
[ "$(grep -c '^quantize: *[0-9]*% ' "$TMP/err")" = 10 ] && ok || bad "quantize --progress: not 10 lines: $(cat "$TMP/err")"
grep -q "^quantize: 100% " "$TMP/err" && ok || bad "quantize --progress does not reach 100 %"
cmp -s "$TMP/a.gguf" "$TMP/b.gguf" && ok || bad "--progress changed the output file"

expect_exit 0 "" perplexity -m "$Q8" -f "$TEXT" -c 128 --chunks 20
grep -q "%" "$TMP/err" && bad "perplexity printed progress on a pipe" || ok
grep -qE "^perplexity: 20 chunks of 128 tokens \([0-9]+ scored\) in [0-9.]+ s, [0-9.]+ tok/s$" "$TMP/err" && ok ||
    bad "perplexity: no closing statistics line: $(tail -2 "$TMP/err")"
grep -q "^\[1\]" "$TMP/out" && grep -q "Final estimate" "$TMP/out" && ok || bad "perplexity output changed"
cp "$TMP/out" "$TMP/plain.out"
expect_exit 0 "" perplexity -m "$Q8" -f "$TEXT" -c 128 --chunks 20 --progress
lines=$(grep -c '^perplexity: *[0-9]*% ' "$TMP/err")
[ "$lines" = 10 ] && ok || bad "perplexity --progress: $lines lines, want 10"
cmp -s "$TMP/out" "$TMP/plain.out" && ok || bad "--progress changed perplexity's stdout"
# loading: the repack (only where the CPU has an interleaved kernel) and, with a
# --mem budget that streams, the warm-up read of the resident layers
expect_exit 0 "" run -m "$Q8" -p hi -n 2
grep -qE "^(repack|warm-up):" "$TMP/err" && bad "run printed loading progress on a pipe" || ok
expect_exit 0 "" run -m "$Q8" -p hi -n 2 --progress
if grep -q "^repack:" "$TMP/err"; then
    grep -q "^repack: 100% " "$TMP/err" && [ "$(grep -c '^repack:' "$TMP/err")" -le 10 ] && ok ||
        bad "run --progress: repack lines: $(cat "$TMP/err")"
else
    echo "note: no repack on this CPU (no interleaved kernel), repack progress not checked"
fi
expect_exit 0 "" run -m "$Q8" -p hi -n 2 --progress --mem 15M --no-repack
grep -q "^warm-up: 100% " "$TMP/err" && ok || bad "run --mem --progress: no warm-up progress: $(cat "$TMP/err")"
tail -1 "$TMP/err" | grep -q "^prompt: .* peak RSS" && ok || bad "run does not end with its statistics line"
test_finish test_progress
