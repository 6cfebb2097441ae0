#!/usr/bin/env bash
# test_quantize_cli.sh - `frugal quantize` from the command line: usage errors, clean
# failures (missing input, OUT == IN, unknown type) that leave no output behind and
# never touch the input, the summary line, and that a quantized model inspects and
# runs. (Byte-exact comparisons with llama-quantize are in test_quantize.c.)
# Env: FRUGAL, FRUGAL_SHARED_DIR, FRUGAL_TMP.
set -u

. "$(dirname "$0")/lib.sh"
test_setup test_quantize_cli

expect_exit 0 "" quantize --help
grep -q "usage: frugal quantize" "$TMP/out" && ok || bad "quantize --help prints usage"
expect_exit 2 "^frugal: error:.*IN.gguf and OUT.gguf" quantize a.gguf --type q8_0
expect_exit 2 "^frugal: error:.*--type is required" quantize a.gguf b.gguf
expect_exit 2 "^frugal: error:.*unknown type 'q3_x'" quantize a.gguf b.gguf --type q3_x
expect_exit 2 "^frugal: error:" quantize a.gguf b.gguf --type q8_0 --keep-first -1
expect_exit 1 "^frugal: error:.*nonexistent.gguf" quantize "$TMP/nonexistent.gguf" "$TMP/o.gguf" --type q8_0
[ ! -e "$TMP/o.gguf" ] && ! ls "$TMP"/o.gguf.tmp* >/dev/null 2>&1 && ok || bad "failed quantize left an output file"

# a small model written here (no shared data needed)
VOCAB=""
[ -n "$SHARED" ] && [ -f "$SHARED/vocab/ggml-vocab-llama-spm.gguf" ] && VOCAB=$SHARED/vocab/ggml-vocab-llama-spm.gguf
if [ -z "$VOCAB" ]; then
    echo "shared vocab absent: model tests skipped"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ] && exit 77 || exit 1
fi
expect_exit 0 "" mkmodel --dim 256 --layers 2 --heads 4 --ffn 512 --vocab-from "$VOCAB" --type f32 --ctx 128 -o "$TMP/m.gguf"
sum_before=$(cksum <"$TMP/m.gguf")
expect_exit 2 "names the input" quantize "$TMP/m.gguf" "$TMP/m.gguf" --type q8_0
expect_exit 2 "names the input" quantize "$TMP/m.gguf" "$TMP/./m.gguf" --type q8_0
[ "$(cksum <"$TMP/m.gguf")" = "$sum_before" ] && ok || bad "refused quantize modified the input"

for t in q8_0 q4_0 q4_k q6_k f16; do
    expect_exit 0 "^quantize: .* -> .*bits per weight" quantize "$TMP/m.gguf" "$TMP/m-$t.gguf" --type "$t" -t 2
    expect_exit 0 "" inspect "$TMP/m-$t.gguf"
    expect_exit 0 "" run -m "$TMP/m-$t.gguf" -p "Hello" -n 4 --temp 0
done
[ "$(cksum <"$TMP/m.gguf")" = "$sum_before" ] && ok || bad "quantize modified its input"
grep -qE "general.file_type +u32 += 15" <("$FRUGAL" inspect "$TMP/m-q4_k.gguf") && ok || bad "q4_k file_type is not 15"
grep -qE "output.weight +Q6_K" <("$FRUGAL" inspect "$TMP/m-q4_0.gguf") && ok || bad "q4_0: output.weight is not Q6_K"
grep -qE "attn_norm.weight +F32" <("$FRUGAL" inspect "$TMP/m-f16.gguf") && ok || bad "f16: norms are not F32"
# --keep-output / --keep-first
expect_exit 0 "" quantize "$TMP/m.gguf" "$TMP/k.gguf" --type q8_0 --keep-output --keep-first 1
"$FRUGAL" inspect "$TMP/k.gguf" >"$TMP/insp"
grep -qE "output.weight +F32" "$TMP/insp" && grep -qE "blk.0.attn_q.weight +F32" "$TMP/insp" &&
    grep -qE "blk.1.attn_q.weight +Q8_0" "$TMP/insp" && ok || bad "--keep-output/--keep-first types"
# re-quantizing quantized input warns
expect_exit 0 "warning: .*re-quantizing" quantize "$TMP/m-q8_0.gguf" "$TMP/r.gguf" --type q4_0

test_finish test_quantize_cli
