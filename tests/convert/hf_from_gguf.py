#!/usr/bin/env python3
"""hf_from_gguf.py - write a Hugging Face model folder out of a GGUF model (the reverse of
`frugal convert`), for the converter's tests. Python standard library only.

usage: hf_from_gguf.py IN.gguf OUT_DIR [--dtype f32|f16|bf16] [--shards N] [--gguf-reader PATH]

IN.gguf must hold float tensors (F32/F16: make one with `frugal quantize X.gguf Y.gguf
--type f32`). Handled: architectures llama (incl. Mixtral's experts, rope_freqs given back
as Llama-3 rope_scaling), qwen2, qwen3, gemma, gemma2 and gpt2 (Conv1D layout). The folder
gets config.json, model.safetensors (or N shards + model.safetensors.index.json),
tokenizer.model (SentencePiece vocabularies: a protobuf written here) or tokenizer.json
(byte-level BPE: merges as ["a", "b"] pairs) and tokenizer_config.json. What it undoes:
the GGUF names, llama's Q/K row permutation, Gemma's +1 on norm weights, the stacking of
experts, GPT-2's Conv1D transpose. The GGUF reader is ../shared/hf/gguf_compare.py's
(--gguf-reader, default: beside the shared folder the tests use).
"""
import argparse
import array
import json
import os
import struct
import sys

T_F32, T_F16 = 0, 1


def f32_to_bf16_bytes(vals):
    out = bytearray(2 * len(vals))
    raw = array.array("I")
    raw.frombytes(array.array("f", vals).tobytes())
    for i, x in enumerate(raw):
        if (x & 0x7FFFFFFF) > 0x7F800000:
            h = (x >> 16) | 64
        else:
            h = (x + (0x7FFF + ((x >> 16) & 1))) >> 16
        out[2 * i] = h & 0xFF
        out[2 * i + 1] = (h >> 8) & 0xFF
    return bytes(out)


def encode(vals, dtype):
    if dtype == "F32":
        return array.array("f", vals).tobytes()
    if dtype == "F16":
        return struct.pack("<%de" % len(vals), *vals)
    return f32_to_bf16_bytes(vals)


def floats(g, t):
    b = g.data(t)
    if t["type"] == T_F32:
        a = array.array("f")
        a.frombytes(b)
        return a
    if t["type"] == T_F16:
        return array.array("f", struct.unpack("<%de" % (len(b) // 2), b))
    sys.exit(f"{t['name']}: type {t['type_name']} is not float; run `frugal quantize IN OUT --type f32` first")


def rows(vals, n_rows):
    cols = len(vals) // n_rows
    return [vals[r * cols:(r + 1) * cols] for r in range(n_rows)]


def unpermute(vals, n_rows, heads):
    """GGUF's interleaved Q/K rows back to HF's rotate-half order (per head)."""
    rs = rows(vals, n_rows)
    d = n_rows // heads
    out = [None] * n_rows
    for r in range(n_rows):
        h, w = divmod(r, d)
        out[h * d + (w % 2) * (d // 2) + w // 2] = rs[r]
    return array.array("f", [x for r in out for x in r])


def transpose(vals, n_rows):
    cols = len(vals) // n_rows
    return array.array("f", [vals[r * cols + c] for c in range(cols) for r in range(n_rows)])


LAYER = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
         "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
         "ffn_gate_inp": "block_sparse_moe.gate"}
GEMMA2_LAYER = {"ffn_norm": "pre_feedforward_layernorm", "post_attention_norm": "post_attention_layernorm",
                "post_ffw_norm": "post_feedforward_layernorm"}
GPT2_LAYER = {"attn_norm": "ln_1", "ffn_norm": "ln_2", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
              "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"}
GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
GPT2_GLOBAL = {"token_embd": "transformer.wte", "position_embd": "transformer.wpe", "output_norm": "transformer.ln_f"}
EXPERTS = {"ffn_gate_exps": "w1", "ffn_down_exps": "w2", "ffn_up_exps": "w3"}
QWEN_EXPERTS = {"ffn_gate_exps": "gate_proj", "ffn_down_exps": "down_proj", "ffn_up_exps": "up_proj"}
PHI3_LAYER = {"attn_qkv": "self_attn.qkv_proj", "ffn_up": "mlp.gate_up_proj"}


def kv(g, key, default=None):
    v = g.kv.get(key)
    if v is None:
        return default
    return v[1].decode() if isinstance(v[1], bytes) else v[1]


def tensors_hf(g, arch):
    """Yield (hf_name, pytorch_shape, float values) for every tensor of the GGUF."""
    heads = kv(g, f"{arch}.attention.head_count")
    kv_heads = kv(g, f"{arch}.attention.head_count_kv", heads)
    gpt2, gemma = arch == "gpt2", arch in ("gemma", "gemma2", "gemma3")
    for t in g.tensors:
        name, shape = t["name"], list(reversed(t["shape"]))
        if name in ("rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"):
            continue  # the converter makes it again from rope_scaling
        base, suffix = name.rsplit(".", 1)
        vals = floats(g, t)
        if base.startswith("blk."):
            _, n, what = base.split(".", 2)
            if what in EXPERTS:
                per = len(vals) // shape[0]
                for e in range(shape[0]):
                    hf = (f"mlp.experts.{e}.{QWEN_EXPERTS[what]}" if arch == "qwen3moe"
                          else f"block_sparse_moe.experts.{e}.{EXPERTS[what]}")
                    yield f"model.layers.{n}.{hf}.{suffix}", shape[1:], vals[e * per:(e + 1) * per]
                continue
            table = GPT2_LAYER if gpt2 else dict(LAYER, **(GEMMA2_LAYER if arch in ("gemma2", "gemma3") else
                                                           PHI3_LAYER if arch == "phi3" else {}))
            if what == "ffn_gate_inp" and arch == "qwen3moe":
                hf = "mlp.gate"
            else:
                hf = table.get(what)
            if hf is None:
                sys.exit(f"{name}: no HF name known")
            full = f"{'transformer.h' if gpt2 else 'model.layers'}.{n}.{hf}.{suffix}"
        else:
            hf = (GPT2_GLOBAL if gpt2 else GLOBAL).get(base)
            if hf is None:
                sys.exit(f"{name}: no HF name known")
            full = f"{hf}.{suffix}"
        if arch == "llama" and what_is(name, ("attn_q", "attn_k")) and suffix == "weight":
            vals = unpermute(vals, shape[0], heads if ".attn_q." in name else kv_heads)
        if gpt2 and suffix == "weight" and len(shape) == 2 and full.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            vals = transpose(vals, shape[0])
            shape = [shape[1], shape[0]]
        if gemma and full.endswith("norm.weight"):
            vals = array.array("f", [v - 1.0 for v in vals])
        yield full, shape, vals


def what_is(name, kinds):
    parts = name.split(".")
    return len(parts) == 4 and parts[2] in kinds


def write_safetensors(path, items):
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dtype, shape, data in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wt, payload):
    return varint(num << 3 | wt) + payload


def spm_model(tokens, scores, types):
    """A SentencePiece ModelProto holding only the pieces (field 1)."""
    out = bytearray()
    for tok, sc, ty in zip(tokens, scores, types):
        piece = field(1, 2, varint(len(tok)) + tok) + field(2, 5, struct.pack("<f", sc)) + field(3, 0, varint(ty))
        out += field(1, 2, varint(len(piece)) + piece)
    return bytes(out)


def write_tokenizer(g, out, cfg):
    model = kv(g, "tokenizer.ggml.model")
    tokens = kv(g, "tokenizer.ggml.tokens")[1]
    types = kv(g, "tokenizer.ggml.token_type")[1]
    tcfg = {}
    for k in ("bos", "eos"):
        if kv(g, f"tokenizer.ggml.add_{k}_token") is not None:
            tcfg[f"add_{k}_token"] = bool(kv(g, f"tokenizer.ggml.add_{k}_token"))
    for k, hk in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")):
        v = kv(g, f"tokenizer.ggml.{hk}_token_id")
        if v is not None:
            cfg[f"{k}_token_id"] = v
    if kv(g, "tokenizer.chat_template") is not None:
        tcfg["chat_template"] = kv(g, "tokenizer.chat_template")
    if model == "llama":
        scores = kv(g, "tokenizer.ggml.scores")[1]
        open(os.path.join(out, "tokenizer.model"), "wb").write(spm_model(tokens, scores, types))
        # control / user-defined tokens scored -1000: what the converter makes of
        # tokenizer_config.json's added_tokens_decoder entries
        dec = {str(i): {"content": tokens[i].decode("utf-8"), "special": types[i] == 3}
               for i in range(len(tokens)) if types[i] in (3, 4) and scores[i] == -1000.0}
        if dec:
            tcfg["added_tokens_decoder"] = dec
    elif model == "gpt2":
        text = [t.decode("utf-8") for t in tokens]
        vocab = {s: i for i, s in enumerate(text) if types[i] != 3}
        added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for i, s in enumerate(text) if types[i] == 3]
        merges = [m.decode("utf-8").split(" ") for m in kv(g, "tokenizer.ggml.merges")[1]]
        tj = {"version": "1.0", "added_tokens": added, "normalizer": None,
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
              "decoder": {"type": "ByteLevel"},
              "model": {"type": "BPE", "vocab": vocab, "merges": merges}}
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
        for k in ("bos", "eos"):
            if f"{k}_token_id" in cfg:
                tcfg[f"{k}_token"] = text[cfg[f"{k}_token_id"]]
    else:
        sys.exit(f"tokenizer model {model}: not handled")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)


HF_ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
           "qwen3moe": "Qwen3MoeForCausalLM", "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
           "gemma3": "Gemma3ForCausalLM", "gpt2": "GPT2LMHeadModel", "phi3": "Phi3ForCausalLM"}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def config(g, arch, names):
    a = lambda k, d=None: kv(g, f"{arch}.{k}", d)
    if arch == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": a("embedding_length"),
                "n_layer": a("block_count"), "n_head": a("attention.head_count"), "n_ctx": a("context_length"),
                "n_positions": a("context_length"), "layer_norm_epsilon": a("attention.layer_norm_epsilon"),
                "vocab_size": len(kv(g, "tokenizer.ggml.tokens")[1])}
    experts = a("expert_count")
    cfg = {"architectures": ["MixtralForCausalLM" if arch == "llama" and experts else HF_ARCH[arch]],
           "hidden_size": a("embedding_length"), "intermediate_size": a("feed_forward_length"),
           "num_hidden_layers": a("block_count"), "num_attention_heads": a("attention.head_count"),
           "num_key_value_heads": a("attention.head_count_kv"), "max_position_embeddings": a("context_length"),
           "rms_norm_eps": a("attention.layer_norm_rms_epsilon"),
           "vocab_size": len(kv(g, "tokenizer.ggml.tokens")[1]),
           "tie_word_embeddings": "lm_head.weight" not in names}
    if a("rope.freq_base") is not None:
        cfg["rope_theta"] = a("rope.freq_base")
    if a("attention.key_length") is not None:
        cfg["head_dim"] = a("attention.key_length")
    if experts:
        cfg["num_local_experts" if arch == "llama" else "num_experts"] = experts
        cfg["num_experts_per_tok"] = a("expert_used_count")
    if arch == "qwen3moe":
        cfg["moe_intermediate_size"] = a("expert_feed_forward_length")
    if arch == "phi3":
        cfg["original_max_position_embeddings"] = a("rope.scaling.original_context_length")
        cfg["sliding_window"] = a("attention.sliding_window")
        if "rope_factors_long.weight" in g.by_name:
            fl = lambda n: [float(v) for v in floats(g, g.by_name[n])]
            cfg["rope_scaling"] = {"type": "longrope", "long_factor": fl("rope_factors_long.weight"),
                                   "short_factor": fl("rope_factors_short.weight")}
    if arch == "gemma3":
        cfg["rope_local_base_freq"] = a("rope.freq_base_swa", 10000.0)
        cfg["sliding_window"] = a("attention.sliding_window")
        if a("rope.scaling.type") == "linear":
            cfg["rope_scaling"] = {"rope_type": "linear", "factor": a("rope.scaling.factor")}
    if arch in ("gemma2",):
        for k in ("attn_logit_softcapping", "final_logit_softcapping"):
            if a(k) is not None:
                cfg[k] = a(k)
        if a("attention.sliding_window") is not None:
            cfg["sliding_window"] = a("attention.sliding_window")
    if "rope_freqs.weight" in g.by_name:
        # the shared llama3 model's factors: Llama-3.1's formula with a short original context
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--gguf-reader", default=os.environ.get("GGUF_COMPARE", ""))
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.gguf_reader)) if args.gguf_reader else ".")
    from gguf_compare import GGUFFile
    g = GGUFFile(args.gguf)
    arch = kv(g, "general.architecture")
    os.makedirs(args.out, exist_ok=True)
    dtype = args.dtype.upper()
    items = []
    for name, shape, vals in tensors_hf(g, arch):
        dt = "F32" if len(shape) == 1 else dtype
        items.append((name, dt, shape, encode(vals, dt)))
    names = {i[0] for i in items}
    cfg = config(g, arch, names)
    write_tokenizer(g, args.out, cfg)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    items.sort(key=lambda i: i[0])
    if args.shards <= 1:
        write_safetensors(os.path.join(args.out, "model.safetensors"), items)
        return
    total = sum(len(i[3]) for i in items)
    shards, cur, size = [], [], 0
    for it in items:
        cur.append(it)
        size += len(it[3])
        if size >= total * (len(shards) + 1) / args.shards and len(shards) < args.shards - 1:
            shards.append(cur)
            cur = []
    shards.append(cur)
    wm = {}
    for k, sh in enumerate(shards):
        fn = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(args.out, fn), sh)
        wm.update({i[0]: fn for i in sh})
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)


if __name__ == "__main__":
    main()
