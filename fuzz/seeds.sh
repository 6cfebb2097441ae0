#!/usr/bin/env bash
# seeds.sh FRUGAL SHARED OUT - write the seed corpora of the fuzz targets under
# OUT/<target>/, generated from the shared test data (nothing is copied into the
# repository): tiny GGUF models written by `frugal mkmodel` from the shared
# vocabularies, the shared tokenizer test inputs and texts, requests and chat
# templates built from them.
set -eu
FRUGAL=$1 SHARED=$2 OUT=$3
mkdir -p "$OUT"/fuzz_gguf "$OUT"/fuzz_tokenizer "$OUT"/fuzz_http "$OUT"/fuzz_template "$OUT"/fuzz_kv_spill "$OUT"/fuzz_safetensors

# GGUF: tiny llama/qwen2 models (a few KiB of weights) on small real vocabularies
n=0
for voc in models/fortune-3m-q8_0.gguf models/zh-poem-f32.gguf models/stories260K.gguf; do
    for ty in f16 q8_0 q4_0; do
        for arch in llama qwen2; do
            n=$((n + 1))
            "$FRUGAL" mkmodel --arch $arch --dim 32 --layers 1 --heads 2 --kv-heads 1 --ffn 32 \
                --vocab-from "$SHARED/$voc" --type $ty -o "$OUT/fuzz_gguf/seed$n.gguf" --seed $n >/dev/null 2>&1 || true
        done
    done
done

# tokenizer: byte 0 selects the vocabulary (0..5) and flags; the shared *.inp cases
python3 - "$SHARED" "$OUT/fuzz_tokenizer" <<'PY'
import os, sys
shared, out = sys.argv[1], sys.argv[2]
cases = []
for f in sorted(os.listdir(f"{shared}/vocab")):
    if f.endswith(".inp"):
        cases += open(f"{shared}/vocab/{f}", "rb").read().split(b"\n__ggml_vocab_test__\n")
cases += open(f"{shared}/text/fortunes-val.txt", "rb").read().split(b"\n")[:200]
cases = [c for c in dict.fromkeys(cases) if len(c) < 2000]
for i, c in enumerate(cases):
    sel = bytes([(i % 6) | ((i // 6 % 4) << 4)])
    open(f"{out}/t{i}", "wb").write(sel + c)
PY

# HTTP: requests of both endpoints, options varied, prompts from the shared text
python3 - "$SHARED" "$OUT/fuzz_http" <<'PY'
import json, sys
shared, out = sys.argv[1], sys.argv[2]
lines = [l for l in open(f"{shared}/text/fortunes-val.txt", encoding="utf-8", errors="replace").read().split("\n") if l.strip()][:60]
opts = [{}, {"max_tokens": 8, "temperature": 0}, {"stream": True, "stream_options": {"include_usage": True}},
        {"top_p": 0.5, "top_k": 4, "min_p": 0.1, "seed": 42, "stop": ["\n", "--"]},
        {"logit_bias": {"2": -100, "10": 5}, "frequency_penalty": 1, "presence_penalty": -1},
        {"logprobs": True, "top_logprobs": 3}, {"n": 1, "max_completion_tokens": 4, "seed": -5}]
for i, l in enumerate(lines):
    o = dict(opts[i % len(opts)])
    if i % 2:
        o["messages"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": l}]
        if i % 4 == 1:
            o["messages"][1]["content"] = [{"type": "text", "text": l}]
    else:
        o["prompt"] = l if i % 4 == 0 else [l]
    auth = [b"Bearer sekrit", b"bearer sekrit", b"", b"Basic x"][i % 4]
    open(f"{out}/r{i}", "wb").write(bytes([i % 2 | (i % 3 == 0) << 1 | (i % 7) << 2]) + auth + b"\n" +
                                    json.dumps(o).encode())
open(f"{out}/ids", "wb").write(b"\x00Bearer sekrit\n" + json.dumps({"prompt": [1, 2, 3], "max_tokens": 2}).encode())
PY

# chat templates: the shared HF tokenizer configs' templates and conversations
python3 - "$SHARED" "$OUT/fuzz_template" <<'PY'
import json, os, sys
shared, out = sys.argv[1], sys.argv[2]
i = 0
for d in sorted(os.listdir(f"{shared}/hf")):
    p = f"{shared}/hf/{d}/tokenizer_config.json"
    if os.path.isfile(p):
        t = json.load(open(p)).get("chat_template")
        if isinstance(t, str):
            open(f"{out}/jinja{i}", "w").write(t); i += 1
lines = [l for l in open(f"{shared}/text/fortunes-val.txt", encoding="utf-8", errors="replace").read().split("\n") if l.strip()][:40]
roles = ["system", "user", "assistant", "user", "tool"]
for k in range(0, len(lines), 4):
    conv = b"\0".join(r.encode() + b"\0" + l.encode() for r, l in zip(roles, lines[k:k + 4]))
    open(f"{out}/conv{k}", "wb").write(conv)
for name in ["<|im_start|>", "<|start_header_id|>", "[INST]", "<start_of_turn>", "<|user|>", "<|assistant|>"]:
    open(f"{out}/marker{i}", "w").write("{% for m in messages %}" + name + "{{ m.content }}{% endfor %}"); i += 1
PY

# KV spill file contents: slices of the shared text (any bytes are a valid file)
python3 - "$SHARED" "$OUT/fuzz_kv_spill" <<'PY'
import sys
shared, out = sys.argv[1], sys.argv[2]
data = open(f"{shared}/text/fortunes-val.txt", "rb").read()
for i, n in enumerate([0, 16, 1000, 4096, 20000, 65536]):
    open(f"{out}/s{i}", "wb").write(bytes([i & 1, (i * 50) % 256]) + data[:n])
PY
# safetensors: small files in every dtype (some sharing no bytes, some empty), and
# the headers of the shared HF folders' files with a little of their data
python3 - "$SHARED" "$OUT/fuzz_safetensors" <<'PY'
import json, os, struct, sys
shared, out = sys.argv[1], sys.argv[2]
def st(tensors):
    h, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, dt, shape in tensors:
        n = (4 if dt == "F32" else 2)
        for d in shape: n *= d
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes((off + i) % 251 for i in range(n)); off += n
    j = json.dumps(h).encode()
    return struct.pack("<Q", len(j)) + j + data
k = 0
for dt in ["F32", "F16", "BF16"]:
    for shapes in [[[4]], [[2, 3], [3]], [[2, 2, 2], []], [[0], [1, 1, 1, 1]]]:
        open(f"{out}/syn{k}", "wb").write(st([(f"t{i}.weight", dt, s) for i, s in enumerate(shapes)])); k += 1
for folder in sorted(os.listdir(f"{shared}/hf")):
    d = f"{shared}/hf/{folder}"
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if f.endswith(".safetensors"):
            b = open(f"{d}/{f}", "rb").read(65536)
            open(f"{out}/{folder}-{f}", "wb").write(b)
PY
for t in "$OUT"/*; do echo "seeds: $(basename "$t"): $(ls "$t" | wc -l) files"; done
