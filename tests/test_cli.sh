#!/usr/bin/env bash
# test_cli.sh - end-to-end tests of the frugal CLI: help and usage errors, tokenize
# against llama.cpp's vocab test vectors, mkmodel + inspect + run on the models it
# writes, run --json, greedy output of a real model, and clean failures on bad files.
# Env: FRUGAL (the CLI), FRUGAL_SHARED_DIR (test data; parts needing it are skipped
# when absent), FRUGAL_TMP (scratch dir).
set -u

. "$(dirname "$0")/lib.sh"
test_setup test_cli

have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1

# ------------------------------------------------------------ help, version, usage
expect_exit 0 "" --help
grep -q "usage: frugal" "$TMP/out" && ok || bad "--help prints usage to stdout"
expect_exit 0 "" --version
grep -qE "^frugal [0-9]+\.[0-9]+\.[0-9]+" "$TMP/out" && ok || bad "--version prints the version"
for sub in run tokenize inspect mkmodel; do
    expect_exit 0 "" "$sub" --help
    grep -q "usage: frugal $sub" "$TMP/out" && ok || bad "$sub --help prints its usage to stdout"
    expect_exit 0 "" "$sub" -h
done
expect_exit 2 "^frugal: error:" # no subcommand
expect_exit 2 "^frugal: error: unknown subcommand" frobnicate
expect_exit 2 "^frugal: error: unknown flag" run --no-such-flag
expect_exit 2 "^frugal: error: unknown flag" tokenize -m x -p y --bogus
expect_exit 2 "^frugal: error:.*missing value" run -m x.gguf -p
expect_exit 2 "^frugal: error:.*missing value" run -m x.gguf -p hi --temp
expect_exit 2 "^frugal: error:.*-n" run -m x.gguf -p hi -n 12x
expect_exit 2 "^frugal: error:.*-n" run -m x.gguf -p hi -n 99999999999999999999
expect_exit 2 "^frugal: error:.*-n" run -m x.gguf -p hi -n ''
expect_exit 2 "^frugal: error:.*--top-k" run -m x.gguf -p hi --top-k -3
expect_exit 2 "^frugal: error:.*--temp" run -m x.gguf -p hi --temp abc
expect_exit 2 "^frugal: error:.*--temp" run -m x.gguf -p hi --temp nan
expect_exit 2 "^frugal: error:.*--top-p" run -m x.gguf -p hi --top-p 1.5
expect_exit 2 "^frugal: error:.*-s" run -m x.gguf -p hi -s -5
expect_exit 2 "^frugal: error:.*--kv-type" run -m x.gguf -p hi --kv-type q3
expect_exit 2 "^frugal: error:" run -p hi                 # no model
expect_exit 2 "^frugal: error:" run -m x.gguf             # no prompt
expect_exit 2 "^frugal: error:" run -m x.gguf -p a -f b   # both
expect_exit 2 "^frugal: error:" tokenize -p hi
expect_exit 2 "^frugal: error:" inspect
expect_exit 2 "^frugal: error:" inspect a.gguf b.gguf
expect_exit 2 "^frugal: error:.*--dim" mkmodel --dim -64 --layers 1 --heads 4 --ffn 64 --vocab-from v -o o
expect_exit 2 "^frugal: error:.*--seed" mkmodel --seed 1.5 --dim 64 --layers 1 --heads 4 --ffn 64 --vocab-from v -o o
expect_exit 2 "^frugal: error:.*--ffn" mkmodel --dim 64 --layers 1 --heads 4 --vocab-from v -o o
expect_exit 2 "^frugal: error:.*multiple" mkmodel --dim 64 --layers 1 --heads 3 --ffn 64 --vocab-from v -o o
expect_exit 2 "^frugal: error:.*arch" mkmodel --arch gpt9 --dim 64 --layers 1 --heads 4 --ffn 64 --vocab-from v -o o
expect_exit 2 "^frugal: error:.*type" mkmodel --type q3_k --dim 64 --layers 1 --heads 4 --ffn 64 --vocab-from v -o o

# ------------------------------------------------------------ bad files (no shared data needed)
expect_exit 1 "^frugal: error: $TMP/missing.gguf: " run -m "$TMP/missing.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/missing.gguf: " tokenize -m "$TMP/missing.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/missing.gguf: " inspect "$TMP/missing.gguf"
expect_exit 1 "^frugal: error: $TMP/missing.txt: " run -m "$TMP/missing.gguf" -f "$TMP/missing.txt"
head -c 5000 /dev/urandom >"$TMP/garbage.gguf"
expect_exit 1 "^frugal: error: $TMP/garbage.gguf: " run -m "$TMP/garbage.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/garbage.gguf: " inspect "$TMP/garbage.gguf"
expect_exit 1 "^frugal: error: $TMP/garbage.gguf: " mkmodel --dim 64 --layers 1 --heads 4 --ffn 64 \
    --vocab-from "$TMP/garbage.gguf" -o "$TMP/never.gguf"
check "no output file after a failed mkmodel" test ! -e "$TMP/never.gguf"

# ------------------------------------------------------------ shared data
if [ -z "$SHARED" ] || [ ! -d "$SHARED/vocab" ] || [ ! -d "$SHARED/models" ]; then
    echo "SKIP (partly): shared test data not found (FRUGAL_SHARED_DIR='$SHARED'); ran the rest"
    echo "test_cli: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
fi
VOC_SPM=$SHARED/vocab/ggml-vocab-llama-spm.gguf
VOC_GPT2=$SHARED/vocab/ggml-vocab-gpt-2.gguf
STORIES=$SHARED/models/stories260K.gguf

# mkmodel: small llama (SentencePiece vocab) and qwen2 (GPT-2 vocab) models
LL=$TMP/ll.gguf
QW=$TMP/qw.gguf
expect_exit 0 "" mkmodel --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 \
    --vocab-from "$VOC_SPM" --type q8_0 -o "$LL" --seed 7 --ctx 256
expect_exit 0 "" mkmodel --arch qwen2 --dim 64 --layers 2 --heads 4 --kv-heads 1 --ffn 96 \
    --vocab-from "$VOC_GPT2" --type q4_0 -o "$QW" --seed 7 --tied
check "no .tmp left behind" bash -c "! ls \"$LL\".tmp* >/dev/null 2>&1"
# same seed -> same bytes; another seed -> different weights
"$FRUGAL" mkmodel --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 \
    --vocab-from "$VOC_SPM" --type q8_0 -o "$TMP/ll2.gguf" --seed 7 --ctx 256 2>/dev/null
check "mkmodel is deterministic for a seed" cmp -s "$LL" "$TMP/ll2.gguf"
"$FRUGAL" mkmodel --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 \
    --vocab-from "$VOC_SPM" --type q8_0 -o "$TMP/ll3.gguf" --seed 8 --ctx 256 2>/dev/null
check "mkmodel: another seed gives other weights" test -n "$(cmp "$LL" "$TMP/ll3.gguf" 2>&1)"
rm -f "$TMP/ll2.gguf" "$TMP/ll3.gguf"
expect_exit 2 "^frugal: error:.*multiples? of 32" mkmodel --dim 48 --layers 1 --heads 4 --ffn 64 \
    --vocab-from "$VOC_SPM" --type q4_0 -o "$TMP/x.gguf"

# inspect: tensor count and types
# llama, untied: token_embd + output_norm + output + 2 x 9 = 21; qwen2 tied: 2 + 2 x 12 = 26
expect_exit 0 "" inspect "$LL"
grep -qE "general\.file_type +u32 += 7$" "$TMP/out" && ok || bad "file_type is MOSTLY_Q8_0 (7)"
grep -qE "^GGUF version 3, [0-9]+ metadata keys, 21 tensors" "$TMP/out" && ok || bad "llama model has 21 tensors"
grep -qE "blk\.1\.ffn_down\.weight +Q8_0 +\[128, 64\]" "$TMP/out" && ok || bad "ffn_down is Q8_0 [128, 64]"
grep -qE "blk\.0\.attn_k\.weight +Q8_0 +\[64, 32\]" "$TMP/out" && ok || bad "attn_k is [dim, kv_heads*head_dim]"
grep -qE "output_norm\.weight +F32 +\[64\]" "$TMP/out" && ok || bad "norms stay F32"
grep -qE "llama\.context_length +u32 += 256" "$TMP/out" && ok || bad "context_length from --ctx"
grep -qE "tokenizer\.ggml\.tokens +arr\[string,32000\]" "$TMP/out" && ok || bad "tokenizer copied"
grep -qE "^ +Q8_0 +16 " "$TMP/out" && ok || bad "summary: 16 Q8_0 tensors"
grep -qE "^total: [0-9]+ parameters" "$TMP/out" && ok || bad "inspect prints totals"
expect_exit 0 "" inspect "$QW"
grep -qE "^GGUF version 3, [0-9]+ metadata keys, 26 tensors" "$TMP/out" && ok || bad "qwen2 tied model has 26 tensors"
grep -qE "blk\.0\.attn_q\.bias +F32 +\[64\]" "$TMP/out" && ok || bad "qwen2 has attn_q.bias"
grep -qE "blk\.0\.attn_v\.bias +F32 +\[16\]" "$TMP/out" && ok || bad "qwen2 attn_v.bias is kv_dim"
grep -qE "^ +[0-9]+ +output\.weight" "$TMP/out" && bad "tied model has no output.weight" || ok
grep -qE "qwen2\.rope\.freq_base +f32 += 1000000" "$TMP/out" && ok || bad "qwen2 rope base 1e6"
expect_exit 0 "" inspect "$SHARED/models/fortune-3m-q4_k_m.gguf"
grep -qE "Q4_K" "$TMP/out" && ok || bad "inspect shows Q4_K tensors"

# tokenize --no-special against llama.cpp's expected ids (first cases of each vocab)
if [ "$have_python" -eq 1 ]; then
    for pair in "llama-spm:$LL:12" "gpt-2:$QW:10"; do
        IFS=: read -r vname model ncases <<<"$pair"
        python3 - "$SHARED/vocab/ggml-vocab-$vname.gguf" "$TMP/case_$vname" "$ncases" <<'EOF'
import sys
base, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
inp = open(base + ".inp", "rb").read().split(b"\n__ggml_vocab_test__\n")
exp = open(base + ".out", "rb").read().split(b"\n")
for i in range(min(n, len(exp))):
    open("%s.%d.txt" % (out, i), "wb").write(inp[i])
    open("%s.%d.ids" % (out, i), "wb").write(b" ".join(exp[i].split()))
EOF
        for f in "$TMP/case_$vname".*.txt; do
            want=$(cat "${f%.txt}.ids")
            got=$("$FRUGAL" tokenize -m "$model" -f "$f" --no-special 2>"$TMP/err")
            if [ "$got" = "$want" ]; then ok; else
                bad "tokenize $vname '$(head -c 40 "$f")': got '$got' want '$want' $(head -c 200 "$TMP/err")"
            fi
        done
    done
else
    echo "SKIP: python3 not found: tokenize vectors and JSON checks"
fi
# default mode adds BOS (llama-spm metadata says so), --no-special does not
got=$("$FRUGAL" tokenize -m "$LL" -p "Hello world" 2>/dev/null)
check "tokenize adds BOS by default" test "${got%% *}" = "1"
got=$("$FRUGAL" tokenize -m "$LL" -p "<s>" --no-special 2>/dev/null)
check "--no-special does not parse special text" test "$got" != "1"

# run the written models: greedy twice -> same output; a fixed seed twice -> same output
for m in "$LL" "$QW"; do
    a=$("$FRUGAL" run -m "$m" -p "Hello world" -n 8 --temp 0 2>"$TMP/err"); rc=$?
    check "run $(basename "$m") exit 0 ($(head -c 200 "$TMP/err"))" test "$rc" -eq 0
    grep -qE "tok/s" "$TMP/err" && ok || bad "run prints speed to stderr"
    b=$("$FRUGAL" run -m "$m" -p "Hello world" -n 8 --temp 0 2>/dev/null)
    check "greedy run of $(basename "$m") is repeatable" test "$a" = "$b"
    check "greedy run of $(basename "$m") produced text" test -n "$a"
    a=$("$FRUGAL" run -m "$m" -p "Hello world" -n 8 -s 123 --temp 1.5 2>/dev/null)
    b=$("$FRUGAL" run -m "$m" -p "Hello world" -n 8 -s 123 --temp 1.5 2>/dev/null)
    check "seeded run of $(basename "$m") is repeatable" test "$a" = "$b"
done

# run --json: the documented fields, valid UTF-8, and the same tokens as the text run
if [ "$have_python" -eq 1 ]; then
    for m in "$LL" "$QW"; do
        "$FRUGAL" run -m "$m" -p "Hello world" -n 8 --temp 0 --json >"$TMP/json" 2>"$TMP/err"
        text=$("$FRUGAL" run -m "$m" -p "Hello world" -n 8 --temp 0 2>/dev/null; echo x)
        printf '%s' "${text%x}" >"$TMP/text"
        python3 - "$TMP/json" "$TMP/text" <<'EOF' 2>"$TMP/pyerr" && ok || bad "run --json on $(basename "$m"): $(tail -n 1 "$TMP/pyerr") json: $(head -c 300 "$TMP/json") $(head -c 200 "$TMP/err")"
import json, sys
raw = open(sys.argv[1], "rb").read()
j = json.loads(raw.decode("utf-8"))           # strict: must be valid UTF-8
assert isinstance(j["prompt_tokens"], int) and j["prompt_tokens"] >= 2, j
toks = j["tokens"]
assert isinstance(toks, list) and 1 <= len(toks) <= 8 and all(isinstance(t, int) for t in toks), j
assert isinstance(j["text"], str)
t = j["timings"]
for k in ("prompt_tok_s", "gen_tok_s", "ttft_ms", "peak_rss_bytes"):
    assert isinstance(t[k], (int, float)) and t[k] >= 0, (k, t)
assert t["peak_rss_bytes"] > 0 and t["gen_tok_s"] > 0
# the text run prints the same text plus a newline (invalid UTF-8 shows as U+FFFD in JSON)
plain = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
assert plain.rstrip("\n") == j["text"].rstrip("\n") or plain.startswith(j["text"]), (plain, j["text"])
EOF
    done
    # hot sampling on the byte-fallback vocab emits lone <0xNN> byte tokens (invalid
    # UTF-8 on their own): the JSON must still be strictly valid UTF-8
    for s in 1 2 3; do
        "$FRUGAL" run -m "$LL" -p "Hello" -n 200 --temp 3 --top-k 0 --top-p 1 --min-p 0 -s $s --json \
            >"$TMP/json" 2>/dev/null
        python3 -c 'import json,sys; j=json.loads(open(sys.argv[1],"rb").read().decode("utf-8")); assert len(j["tokens"])>0' \
            "$TMP/json" 2>/dev/null && ok || bad "hot --json -s $s is not valid UTF-8 JSON: $(head -c 300 "$TMP/json")"
    done
    # multi-byte UTF-8 text survives the JSON escaping
    ZH=$SHARED/models/zh-poem-f32.gguf
    if [ -f "$ZH" ]; then
        "$FRUGAL" run -m "$ZH" -p "山" -n 12 --temp 0 --json >"$TMP/json" 2>"$TMP/err"
        python3 -c 'import json,sys; j=json.loads(open(sys.argv[1],"rb").read().decode("utf-8")); assert any(ord(c)>0x3000 for c in j["text"]), j' \
            "$TMP/json" 2>/dev/null && ok || bad "zh-poem --json text: $(head -c 300 "$TMP/json") $(head -c 200 "$TMP/err")"
    fi
fi

# a real model, greedy: continues as llama.cpp's output in the shared README
want=", there was a little girl named Lily. She loved to play outside in the park."
got=$("$FRUGAL" run -m "$STORIES" -p "Once upon a time" -n 24 --temp 0 2>"$TMP/err")
got=${got%$'\n'}
if [ ${#got} -ge 30 ] && [ "${want#"$got"}" != "$want" ]; then ok; else
    bad "stories260K greedy: got '$got' want a prefix of '$want' ($(head -c 200 "$TMP/err"))"
fi
# -f reads the prompt from a file (trailing newline dropped) and gives the same output
printf 'Once upon a time\n' >"$TMP/prompt.txt"
got2=$("$FRUGAL" run -m "$STORIES" -f "$TMP/prompt.txt" -n 24 --temp 0 2>/dev/null)
check "run -f equals run -p" test "${got2%$'\n'}" = "$got"

# load-time repack: at the AVX2 and AVX-512 levels the Q4_0 matrices become accounted
# copies (the mapping's pages are dropped, so RSS stays put); --no-repack leaves them
# mapped. The scalar level has no interleaved GEMM and repacks nothing (as a CPU
# without AVX2 + FMA + F16C; an unsupported FRUGAL_KERNELS falls back to the best level).
Q40=$SHARED/models/synth-spm-q4_0.gguf
w_acc() { "$FRUGAL" run -m "$Q40" -p hi -n 2 --temp 0 --stats "$@" 2>&1 | awk '$1 == "weights" {print int($2 * 1024)}'; }
rp=$(w_acc); nrp=$(w_acc --no-repack)
cpu_avx2=0
grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo && cpu_avx2=1
if [ "$cpu_avx2" -eq 1 ] && [ "${FRUGAL_KERNELS:-}" != scalar ]; then
    check "--no-repack keeps the weights mapped (accounted weights $nrp KiB < repacked $rp KiB)" \
        test -n "$rp" -a -n "$nrp" -a "${nrp:-0}" -lt "${rp:-0}"
else
    check "no repack at the scalar level (accounted weights $rp KiB = $nrp KiB)" test -n "$rp" -a "$rp" = "$nrp"
fi
check "FRUGAL_REPACK=0 does the same" test "$(FRUGAL_REPACK=0 w_acc)" = "$nrp"
# -n is respected: 4 tokens through --json
if [ "$have_python" -eq 1 ]; then
    "$FRUGAL" run -m "$STORIES" -p "Once upon a time" -n 4 --temp 0 --json >"$TMP/json" 2>/dev/null
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert len(j["tokens"])==4, j' "$TMP/json" 2>/dev/null \
        && ok || bad "-n 4 gives 4 tokens: $(head -c 200 "$TMP/json")"
fi

# corrupted and truncated copies of a real model: exit 1 with the path, no crash
head -c 20000 "$STORIES" >"$TMP/trunc.gguf"
expect_exit 1 "^frugal: error: $TMP/trunc.gguf: " run -m "$TMP/trunc.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/trunc.gguf: " tokenize -m "$TMP/trunc.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/trunc.gguf: " inspect "$TMP/trunc.gguf"
size=$(stat -c %s "$STORIES")
head -c $((size - 100)) "$STORIES" >"$TMP/short.gguf"
expect_exit 1 "^frugal: error: $TMP/short.gguf: " run -m "$TMP/short.gguf" -p hi
cp "$STORIES" "$TMP/corrupt.gguf"
printf 'GGUX' | dd of="$TMP/corrupt.gguf" bs=1 seek=0 conv=notrunc 2>/dev/null
expect_exit 1 "^frugal: error: $TMP/corrupt.gguf: " run -m "$TMP/corrupt.gguf" -p hi
# a huge tensor count in the header
cp "$STORIES" "$TMP/corrupt2.gguf"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$TMP/corrupt2.gguf" bs=1 seek=8 conv=notrunc 2>/dev/null
expect_exit 1 "^frugal: error: $TMP/corrupt2.gguf: " run -m "$TMP/corrupt2.gguf" -p hi
expect_exit 1 "^frugal: error: $TMP/corrupt2.gguf: " inspect "$TMP/corrupt2.gguf"

test_finish test_cli
