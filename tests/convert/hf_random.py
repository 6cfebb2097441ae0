#!/usr/bin/env python3
"""hf_random.py - write a random-weight Llama-layout Hugging Face folder of any shape
(F16 or BF16 safetensors, written in 16 MiB pieces: the script itself stays small),
for the converter's memory tests and bench/convert_rss.sh. Standard library only.

usage: hf_random.py OUT_DIR --tokenizer-model PATH [--hidden 2048 --layers 22 --heads 32
       --kv-heads 4 --ffn 5632 --vocab 32000] [--dtype f16|bf16] [--seed-bytes]

Values: random bits with the exponent limited so every weight is a normal number of
magnitude 2^-6 .. 2^-2 (no inf/nan). tokenizer.model (a SentencePiece model, e.g.
../shared/hf/llama/tokenizer.model) is copied into the folder.
"""
import argparse
import json
import os
import shutil
import struct


def table(dtype):
    # high byte of each 16-bit value: keep the sign and the low bits, bound the exponent
    t = bytearray(256)
    for b in range(256):
        if dtype == "F16":   # s eeeee mm: exponent 9..12 (2^-6 .. 2^-3 ranges)
            t[b] = (b & 0x80) | ((9 + ((b >> 2) & 3)) << 2) | (b & 3)
        else:                # BF16: s eeeeeeee mmmmmmm, high byte s eeeeeee: 0x3c..0x3d
            t[b] = (b & 0x80) | (0x3C + (b & 1))
    return bytes(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer-model", required=True)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=22)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16"])
    a = ap.parse_args()
    dt = a.dtype.upper()
    hd = a.hidden // a.heads
    shapes = [("model.embed_tokens.weight", [a.vocab, a.hidden]), ("lm_head.weight", [a.vocab, a.hidden]),
              ("model.norm.weight", [a.hidden])]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", [a.hidden]), (p + "post_attention_layernorm.weight", [a.hidden]),
                   (p + "self_attn.q_proj.weight", [a.heads * hd, a.hidden]),
                   (p + "self_attn.k_proj.weight", [a.kv_heads * hd, a.hidden]),
                   (p + "self_attn.v_proj.weight", [a.kv_heads * hd, a.hidden]),
                   (p + "self_attn.o_proj.weight", [a.hidden, a.heads * hd]),
                   (p + "mlp.gate_proj.weight", [a.ffn, a.hidden]), (p + "mlp.up_proj.weight", [a.ffn, a.hidden]),
                   (p + "mlp.down_proj.weight", [a.hidden, a.ffn])]
    shapes.sort()
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    os.makedirs(a.out, exist_ok=True)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tbl = table(dt)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        left = off
        while left:
            n = min(left, 16 << 20)
            buf = bytearray(os.urandom(n))
            buf[1::2] = buf[1::2].translate(tbl)
            f.write(buf)
            left -= n
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
           "intermediate_size": a.ffn, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": a.kv_heads, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "vocab_size": a.vocab, "tie_word_embeddings": False,
           "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16" if dt == "F16" else "bfloat16"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False}, f)
    shutil.copyfile(a.tokenizer_model, os.path.join(a.out, "tokenizer.model"))
    print(f"{a.out}: {off / 2**20:.1f} MiB of {dt} weights, {len(shapes)} tensors")


if __name__ == "__main__":
    main()
