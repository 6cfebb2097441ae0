#!/usr/bin/env bash
# test_convert_golden.sh - models converted by `frugal convert` run: HF folders written
# out of the ../shared/arch models by tests/convert/hf_from_gguf.py (the reverse
# conversion), converted back with --type q8_0, must pass the golden tests
# (tests/test_golden.c, run on a copy of ../shared/arch whose models are the converted
# ones), and, where the folder holds the exact dequantized values (F32/F16), be
# bit-identical to the shared model in every tensor (requantizing Q8_0 values gives the
# same blocks) with the same architecture keys.
#   llama3 : two shards + index, tied, Llama-3 rope_scaling (rope_freqs rebuilt); and
#            again as BF16 in three shards, converted without --type: a BF16 file whose matrices are the
#            BF16 rounding of the F32 conversion's (BF16 weights are a different model,
#            so no golden run for it)
#   qwen3  : F32, byte-level BPE tokenizer.json with merges as pairs, per-head Q/K norms
#   gemma2 : F32, norms -1 / +1, post-norms, soft-caps, sliding window
#   mixtral: F32, per-expert tensors stacked into ffn_*_exps, untied
#   qwen3moe (experts as mlp.experts.E.*), gpt2 (Conv1D, learned positions), phi3 (fused
#   qkv / gate_up, LongRoPE factors rebuilt from rope_scaling, added tokens from
#   added_tokens_decoder, chat template), gemma, gemma3 (linear rope_scaling, local base)
# Also the CLI's exit status and cleanup on bad input.
# Skips when ../shared (arch models, hf/gguf_compare.py) or python3 is absent.
source "$(dirname "$0")/lib.sh"
test_setup test_convert_golden
HERE=$(cd "$(dirname "$0")" && pwd)
GOLDEN_BIN=$(dirname "$FRUGAL")/test_golden
[ -n "$SHARED" ] && [ -f "$SHARED/arch/models/synth-llama3-q8_0.gguf" ] && [ -f "$SHARED/hf/gguf_compare.py" ] ||
    { echo "SKIP: ../shared/arch or ../shared/hf absent"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
"$FRUGAL" convert --help >/dev/null 2>&1 || { echo "SKIP: frugal built without convert (cJSON)"; exit 77; }

S=$TMP/shared
mkdir -p "$S/arch/models" "$S/arch/golden"
# keys the converter writes that llama.cpp's converter also writes for these configs
# but the synthetic models lack (transformers' default head_dim for llama), and
# the Gemma tokenizer flag and CodeGemma FIM ids llama.cpp's converter always sets
IGN='llama.attention.key_length,llama.attention.value_length,tokenizer.ggml.add_space_prefix'
IGN+=',tokenizer.ggml.prefix_token_id,tokenizer.ggml.suffix_token_id,tokenizer.ggml.middle_token_id'
IGN+=',tokenizer.ggml.eot_token_id'
for spec in "llama3 f32 2" "qwen3 f32 1" "gemma2 f32 1" "mixtral f32 1" "qwen3moe f32 1" "gpt2 f32 1" \
    "phi3 f32 1" "gemma f32 1" "gemma3 f32 1"; do
    set -- $spec
    m=$1 dt=$2 sh=$3
    src=$SHARED/arch/models/synth-$m-q8_0.gguf
    out=$S/arch/models/synth-$m-q8_0.gguf
    "$FRUGAL" quantize "$src" "$TMP/$m-f32.gguf" --type f32 >/dev/null 2>&1 || { bad "$m: dequantize"; continue; }
    python3 "$HERE/convert/hf_from_gguf.py" "$TMP/$m-f32.gguf" "$TMP/hf-$m" --dtype "$dt" --shards "$sh" \
        --gguf-reader "$SHARED/hf/gguf_compare.py" || { bad "$m: hf_from_gguf"; continue; }
    if "$FRUGAL" convert "$TMP/hf-$m" "$out" --type q8_0 2>"$TMP/err"; then ok; else bad "$m: convert: $(cat "$TMP/err")"; continue; fi
    ls "$TMP/hf-$m"/*.tmp* "$S/arch/models/"*.tmp* "$S/arch/models/"*.f16.* >/dev/null 2>&1 && bad "$m: temp file left"
    if [ "$dt" != bf16 ]; then
        python3 "$SHARED/hf/gguf_compare.py" --all --tokenizer --ignore "$IGN" "$src" "$out" >"$TMP/cmp" 2>&1
        # Gemma: the folder holds w - 1 in F32 and the converter adds 1 back, which is
        # exact only where w - 1 keeps w's last bit: norm weights may differ by an ulp
        if python3 - "$TMP/cmp" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
bad = [l for l in lines if (l.startswith("KEY") or l.startswith("TENSOR")) and "order" not in l and not re.match(
    r"TENSOR \S+_norm\.weight: bytes differ: .* max abs diff ([0-9.e+-]+)$", l)]
big = [l for l in lines if re.search(r"max abs diff ([0-9.e+-]+)$", l) and float(l.rsplit(" ", 1)[1]) > 1e-6]
sys.exit(1 if bad or big else 0)
PY
        then ok; else bad "$m: converted file differs from the shared model"; tail -5 "$TMP/cmp"; fi
    fi
    ln -s "$SHARED/arch/golden/synth-$m-q8_0".p*.json "$S/arch/golden/"
    echo "$m ($dt, $sh shard(s)): converted"
done

# BF16: the file keeps BF16 (general.file_type 32) and each matrix is the RNE rounding
# of the F32 folder's conversion, element for element (permuted rows included)
python3 "$HERE/convert/hf_from_gguf.py" "$TMP/llama3-f32.gguf" "$TMP/hf-bf16" --dtype bf16 --shards 3 \
    --gguf-reader "$SHARED/hf/gguf_compare.py" && "$FRUGAL" convert "$TMP/hf-bf16" "$TMP/bf16.gguf" 2>/dev/null &&
    "$FRUGAL" convert "$TMP/hf-llama3" "$TMP/f32.gguf" 2>/dev/null
if python3 - "$SHARED/hf" "$TMP/f32.gguf" "$TMP/bf16.gguf" <<'PY'
import array, struct, sys
sys.path.insert(0, sys.argv[1])
from gguf_compare import GGUFFile
a, b = GGUFFile(sys.argv[2]), GGUFFile(sys.argv[3])
assert b.kv["general.file_type"][1] == 32, "file_type"
n = 0
for t in a.tensors:
    u = b.by_name[t["name"]]
    x = array.array("I"); x.frombytes(a.data(t))
    if u["type"] == 0:
        assert a.data(t) == b.data(u), t["name"]
        continue
    assert u["type"] == 30, t["name"]
    want = bytearray()
    for v in x:
        want += struct.pack("<H", (v + (0x7FFF + ((v >> 16) & 1))) >> 16 & 0xFFFF)
    assert bytes(want) == b.data(u), t["name"]
    n += 1
print(f"bf16: {n} matrices are the RNE rounding of the F32 conversion")
PY
then ok; else bad "llama3 bf16 conversion"; fi

# The Gemma files converted have add_space_prefix = false (llama.cpp's converter always
# writes it for Gemma); the shared models do not, so their prompt tokens differ: their
# golden runs take the golden's token ids without the tokenization check.
if [ -x "$GOLDEN_BIN" ]; then
    for m in llama3 qwen3 mixtral qwen3moe gpt2 phi3 gemma gemma2 gemma3; do
        notok=0; case $m in gemma*) notok=1 ;; esac
        if FRUGAL_GOLDEN_NO_TOKENIZE=$notok FRUGAL_SHARED_DIR=$S "$GOLDEN_BIN" "synth-$m-" >"$TMP/golden" 2>&1; then
            ok; grep "^synth" "$TMP/golden"
        else bad "$m: golden test on the converted model"; tail -8 "$TMP/golden"; fi
    done
else
    echo "(test_golden not built: golden runs skipped)"
fi

# the CLI: bad input is exit 1 with one error line naming the file; nothing left behind
mkdir -p "$TMP/bad"
cp "$TMP/hf-llama3/"*.json "$TMP/hf-llama3/tokenizer.model" "$TMP/bad/"
head -c 100000 "$TMP/hf-llama3/model-00001-of-00002.safetensors" >"$TMP/bad/model-00001-of-00002.safetensors"
cp "$TMP/hf-llama3/model-00002-of-00002.safetensors" "$TMP/bad/"
expect_exit 1 "model-00001-of-00002.safetensors.*(past the end|truncated)" convert "$TMP/bad" "$TMP/bad.gguf"
check "one error line" test "$(wc -l <"$TMP/err")" -eq 1
check "no output" test ! -e "$TMP/bad.gguf"
check "no temp file" test -z "$(ls "$TMP" | grep 'bad.gguf.')"
expect_exit 1 "nothing/config.json: missing" convert "$TMP/nothing" "$TMP/bad.gguf"
expect_exit 2 "" convert "$TMP/bad"
expect_exit 2 "policy" convert "$TMP/hf-llama3" "$TMP/x.gguf" --policy auto
expect_exit 2 "unknown type 'bogus'" convert "$TMP/hf-llama3" "$TMP/x.gguf" --type bogus
check "nothing written for a bad --type" test -z "$(ls "$TMP" | grep 'x.gguf')"
test_finish test_convert_golden
