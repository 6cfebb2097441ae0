#!/usr/bin/env bash
# test_perplexity_cli.sh - `frugal perplexity`: usage errors; the PPL equals an independent
# token-by-token reference (tests/test_perplexity.c --ppl) within 1e-4 relative;
# --chunks agrees with the running values of a longer run; --save-logits + --kl-base
# against itself gives KL ~ 0 and 100 % top-1 (F16 file: KL < 1e-6; F32: exactly 0);
# against Q8_0 / Q4_0 models KL > 0 and top-1 < 100 % for Q4_0; damaged or
# mismatched base files fail cleanly with exit 1.
# Env: FRUGAL, FRUGAL_SHARED_DIR, FRUGAL_TMP.
set -u

. "$(dirname "$0")/lib.sh"
test_setup test_perplexity_cli

# json_field NAME: the number after "NAME": in $TMP/out
json_field() { sed -n "s/.*\"$1\": \([-0-9.eE+]*\).*/\1/p" "$TMP/out"; }
# num_check "EXPR" VALUES...: awk condition on a, b, ... must hold
num_check() {
    local expr=$1; shift
    awk -v a="${1:-nan}" -v b="${2:-nan}" "BEGIN { exit !($expr) }"
}

expect_exit 0 "" perplexity --help
grep -q "usage: frugal perplexity" "$TMP/out" && ok || bad "perplexity --help prints usage"
expect_exit 2 "^frugal: error:.*-m" perplexity -f x.txt
expect_exit 2 "^frugal: error:.*-f" perplexity -m x.gguf
expect_exit 2 "^frugal: error: --kv-type" perplexity -m x.gguf -f x.txt --kv-type q9
expect_exit 2 "^frugal: error: --logits-type" perplexity -m x.gguf -f x.txt --logits-type bf8
expect_exit 2 "^frugal: error:" perplexity -m x.gguf -f x.txt --chunks 0
expect_exit 1 "^frugal: error:.*nonexistent" perplexity -m "$TMP/nonexistent.gguf" -f /dev/null

M=$SHARED/models
TXT=$SHARED/text/fortunes-val.txt
if [ -z "$SHARED" ] || [ ! -f "$M/fortune-3m-f32.gguf" ] || [ ! -f "$TXT" ]; then
    echo "shared data absent: model tests skipped"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && exit 77 || exit 1
fi
F32=$M/fortune-3m-f32.gguf

# ------------------------------------------------------------ PPL vs the reference
REF_BIN=$(dirname "$FRUGAL")/test_perplexity
if [ -x "$REF_BIN" ]; then
    read -r ref_ppl ref_n < <("$REF_BIN" --ppl "$F32" "$TXT" 64 3)
    expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 64 --chunks 3 -t 2 --json
    got=$(json_field ppl)
    num_check "a > 0 && (a - b) / b < 1e-4 && (b - a) / b < 1e-4" "$got" "$ref_ppl" && ok ||
        bad "ppl $got vs token-by-token reference $ref_ppl"
    [ "$(json_field tokens)" = "$ref_n" ] && ok || bad "scored $(json_field tokens) tokens, reference $ref_n"
    [ "$(json_field chunks)" = "3" ] && ok || bad "chunks $(json_field chunks), want 3"
else
    echo "note: $REF_BIN not found: reference comparison skipped"
fi

# text mode: running values per chunk and a final estimate; --chunks is a prefix
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 6 -t 2 --kv-type f32
grep -qE '^\[1\][0-9.]+,\[2\][0-9.]+,.*\[6\][0-9.]+,$' "$TMP/out" && ok || bad "running PPL line: $(head -c 200 "$TMP/out")"
grep -qE '^Final estimate: PPL = [0-9.]+ \+/- [0-9.]+$' "$TMP/out" && ok || bad "final estimate line"
third=$(sed -n 's/.*\[3\]\([0-9.]*\),.*/\1/p' "$TMP/out")
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 3 -t 2 --kv-type f32
final3=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p' "$TMP/out")
[ -n "$third" ] && [ "$third" = "$final3" ] && ok || bad "--chunks 3 gives $final3, the 6-chunk run's [3] is $third"

# ------------------------------------------------------------ KL divergence
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 4 -t 2 --save-logits "$TMP/base.lp"
[ -f "$TMP/base.lp" ] && ! ls "$TMP"/base.lp.tmp* >/dev/null 2>&1 && ok || bad "--save-logits wrote no file (or left the .tmp)"
# header 48 + 4*128 tokens + 4*63 positions * (top-1 id + 512 vocab * 2 bytes)
[ "$(stat -c %s "$TMP/base.lp" 2>/dev/null)" = $((48 + 4 * 128 * 4 + 4 * 63 * (4 + 512 * 2))) ] && ok ||
    bad "base file size $(stat -c %s "$TMP/base.lp" 2>/dev/null)"
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base "$TMP/base.lp" --json
num_check "a >= 0 && a < 1e-6" "$(json_field kld)" && ok || bad "self KL (F16 file) $(json_field kld), want < 1e-6"
num_check "a == 100" "$(json_field top1)" && ok || bad "self top-1 $(json_field top1), want 100"
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 4 -t 2 --save-logits "$TMP/base32.lp" --logits-type f32
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base "$TMP/base32.lp" --json
num_check "a == 0" "$(json_field kld)" && ok || bad "self KL (F32 file) $(json_field kld), want 0"
# without --chunks the run compares as many chunks as the base holds
expect_exit 0 "" perplexity -m "$F32" -f "$TXT" -c 128 -t 2 --kl-base "$TMP/base.lp" --json
[ "$(json_field chunks)" = "4" ] && ok || bad "kl-base run without --chunks scored $(json_field chunks) chunks, want 4"
if [ -f "$M/fortune-3m-q8_0.gguf" ]; then
    expect_exit 0 "" perplexity -m "$M/fortune-3m-q8_0.gguf" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base "$TMP/base.lp" --json
    num_check "a > 1e-6 && a < 1e-2" "$(json_field kld)" && ok || bad "Q8_0 KL $(json_field kld)"
    num_check "a > 90 && a <= 100" "$(json_field top1)" && ok || bad "Q8_0 top-1 $(json_field top1)"
fi
if [ -f "$M/fortune-3m-q4_0.gguf" ]; then
    expect_exit 0 "" perplexity -m "$M/fortune-3m-q4_0.gguf" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base "$TMP/base.lp"
    grep -qE '^KL divergence: mean [0-9.e-]+ \+/- [0-9.e-]+, same top-1: [0-9.]+ \+/- [0-9.]+ %$' "$TMP/out" && ok ||
        bad "text-mode KL line: $(tail -1 "$TMP/out")"
    expect_exit 0 "" perplexity -m "$M/fortune-3m-q4_0.gguf" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base "$TMP/base.lp" --json
    num_check "a > 1e-4 && b < 100 && b > 80" "$(json_field kld)" "$(json_field top1)" && ok ||
        bad "Q4_0 KL $(json_field kld) top-1 $(json_field top1)"
fi

# ------------------------------------------------------------ bad base files
KL=(perplexity -m "$F32" -f "$TXT" -c 128 --chunks 4 -t 2 --kl-base)
expect_exit 1 "nonexistent" "${KL[@]}" "$TMP/nonexistent.lp"
printf 'NOTMAGIC%040d' 0 >"$TMP/magic.lp"
expect_exit 1 "bad magic" "${KL[@]}" "$TMP/magic.lp"
head -c 20 "$TMP/base.lp" >"$TMP/short.lp"
expect_exit 1 "truncated" "${KL[@]}" "$TMP/short.lp"
head -c 100000 "$TMP/base.lp" >"$TMP/trunc.lp"
expect_exit 1 "truncated" "${KL[@]}" "$TMP/trunc.lp"
cp "$TMP/base.lp" "$TMP/extra.lp" && printf 'xx' >>"$TMP/extra.lp"
expect_exit 1 "wrong size" "${KL[@]}" "$TMP/extra.lp"
# flip one byte of the token array: the hash no longer matches
cp "$TMP/base.lp" "$TMP/tok.lp"
printf '\x7f' | dd of="$TMP/tok.lp" bs=1 seek=60 conv=notrunc status=none
expect_exit 1 "token hash" "${KL[@]}" "$TMP/tok.lp"
# version 9
cp "$TMP/base.lp" "$TMP/ver.lp"
printf '\x09' | dd of="$TMP/ver.lp" bs=1 seek=8 conv=notrunc status=none
expect_exit 1 "version" "${KL[@]}" "$TMP/ver.lp"
# another context size, another text, another vocabulary
expect_exit 1 "-c 128" perplexity -m "$F32" -f "$TXT" -c 64 --chunks 4 --kl-base "$TMP/base.lp"
if [ -f "$SHARED/text/gpl-3.txt" ]; then
    expect_exit 1 "differs" perplexity -m "$F32" -f "$SHARED/text/gpl-3.txt" -c 128 --chunks 4 --kl-base "$TMP/base.lp"
fi
if [ -f "$M/zh-poem-f32.gguf" ]; then
    expect_exit 1 "vocabulary" perplexity -m "$M/zh-poem-f32.gguf" -f "$TXT" -c 128 --chunks 4 --kl-base "$TMP/base.lp"
fi
# more chunks asked for than the base holds
expect_exit 1 "holds 4 chunks" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 5 --kl-base "$TMP/base.lp"
# text too short for two windows
head -c 200 "$TXT" >"$TMP/short.txt"
expect_exit 1 "at least" perplexity -m "$F32" -f "$TMP/short.txt" -c 128
# an unwritable --save-logits path fails cleanly and leaves nothing
expect_exit 1 "" perplexity -m "$F32" -f "$TXT" -c 128 --chunks 1 --save-logits "$TMP/no/such/dir/x.lp"

test_finish test_perplexity_cli
