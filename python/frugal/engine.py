"""engine.py - Engine: load a GGUF model and generate, stream, chat, tokenize.

One Engine owns a model, one context (its KV cache) and works from one thread at a
time. Each generate/stream/chat call starts from an empty cache. The loop runs in
Python over the C API (evaluate, sample, evaluate the sampled token) so that
stream() can yield pieces as they come; the per-token C calls dominate its cost.
"""
import codecs
import ctypes
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from . import _lib as L


class FrugalError(Exception):
    """A failure reported by the C library: .code is FRUGAL_E_*, .message its text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _raise(err: L.Error, rc: int) -> None:
    msg = err.message.decode("utf-8", "replace") or L.lib().frugal_status_str(rc).decode()
    raise FrugalError(rc, msg)


@dataclass
class GenerateResult:
    """What generate() and chat() return."""
    text: str
    tokens: List[int]
    timings: Dict[str, float] = field(default_factory=dict)
    finish_reason: str = "length"  # "stop" (end of generation or a stop string) or "length"


def _size(value: Union[int, str, None], what: str) -> int:
    """Bytes from an int or a size string such as "512M"; 0 for None."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("%s must be an int (bytes) or a size string such as '2G', not %s"
                        % (what, type(value).__name__))
    if isinstance(value, int):
        if value < 0:
            raise ValueError("%s must be >= 0" % what)
        return value
    out = ctypes.c_uint64()
    if L.lib().frugal_parse_size(value.encode(), ctypes.byref(out)) != 0:
        raise ValueError("%s: '%s' is not a size such as 512M or 2G" % (what, value))
    return out.value


def _check_int(value: Any, what: str, lo: int, hi: int = 1 << 30) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if not lo <= value <= hi:
        raise ValueError("%s must be in [%d, %d], got %d" % (what, lo, hi, value))
    return value


def _check_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number, not %s" % (what, type(value).__name__))
    return float(value)


def _kv_type(name: str) -> int:
    if not isinstance(name, str):
        raise TypeError("kv_type must be a string such as 'f16', not %s" % type(name).__name__)
    t = L.lib().frugal_kv_type_parse(name.encode())
    if t < 0:
        raise ValueError("kv_type: '%s' is not one of f16, f32, q8_0, q4_0, k8v4" % name)
    return t


class Engine:
    """A loaded model with its context. Use Engine.load(); close() (or a with block)
    frees it."""

    def __init__(self, model: int, ctx: int, path: str, threads: int, kv_type: int):
        self._model = ctypes.c_void_p(model)
        self._ctx = ctypes.c_void_p(ctx)
        self.path = path
        self._threads = threads
        self._kv_type = kv_type
        info = L.ModelInfo()
        L.lib().frugal_model_get_info(self._model, ctypes.byref(info))
        self.n_vocab = info.n_vocab
        self.info = {k: (getattr(info, k).decode() if isinstance(getattr(info, k), bytes) else getattr(info, k))
                     for k, _ in L.ModelInfo._fields_}
        self._last_logits_ok = False

    # ------------------------------------------------------------ life cycle
    @classmethod
    def load(cls, path: str, n_ctx: int = 0, threads: int = 0, mem: Union[int, str, None] = None,
             kv_type: str = "f16", n_gpu_layers: int = 0) -> "Engine":
        """Load a GGUF model and create its context.

        n_ctx: context size (0: the model's, at most 4096); threads: 0 = all cores;
        mem: memory budget in bytes or as "2G" (layers that do not fit are streamed
        from the file); kv_type: f16, f32, q8_0, q4_0 or k8v4; n_gpu_layers: as
        llama.cpp's, the last N layers' matrices on the GPU (Vulkan; -1: all); without
        a device it warns and runs on the CPU. Raises FrugalError (missing, corrupted or unsupported file,
        budget too small), TypeError/ValueError for bad arguments."""
        if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
            raise TypeError("path must be a str or path-like, not %s" % type(path).__name__)
        import os
        path_s = os.fsdecode(os.fspath(path))
        _check_int(n_ctx, "n_ctx", 0, 1 << 24)
        _check_int(threads, "threads", 0, 4096)
        _check_int(n_gpu_layers, "n_gpu_layers", -1, 1 << 20)
        budget = _size(mem, "mem")
        kv = _kv_type(kv_type)
        lib = L.lib()
        mp = L.ModelParams()
        lib.frugal_model_params_default(ctypes.byref(mp))
        mp.n_threads, mp.mem_budget, mp.n_gpu_layers = threads, budget, n_gpu_layers
        err = L.Error()
        model = ctypes.c_void_p()
        rc = lib.frugal_model_load(os.fsencode(path_s), ctypes.byref(mp), ctypes.byref(model), ctypes.byref(err))
        if rc == L.FRUGAL_E_UNSUPPORTED and n_gpu_layers != 0 and b"gpu-layers" in err.message:
            warnings.warn("no GPU device (%s): running on the CPU" % err.message.decode(errors="replace"))
            mp.n_gpu_layers = 0
            err = L.Error()
            rc = lib.frugal_model_load(os.fsencode(path_s), ctypes.byref(mp), ctypes.byref(model),
                                       ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            _raise(err, rc)
        cp = L.ContextParams()
        lib.frugal_context_params_default(ctypes.byref(cp))
        cp.n_ctx, cp.n_threads, cp.kv_type, cp.mem_budget = n_ctx, threads, kv, budget
        ctx = ctypes.c_void_p()
        rc = lib.frugal_context_new(model, ctypes.byref(cp), ctypes.byref(ctx), ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            lib.frugal_model_free(model)
            _raise(err, rc)
        return cls(model.value, ctx.value, path_s, threads, kv)

    def close(self) -> None:
        """Free the context and the model (idempotent)."""
        if self._ctx:
            L.lib().frugal_context_free(self._ctx)
            self._ctx = None
        if self._model:
            L.lib().frugal_model_free(self._model)
            self._model = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _alive(self) -> None:
        if not self._model:
            raise FrugalError(L.FRUGAL_E_INVALID_ARG, "the engine is closed")

    @property
    def n_ctx(self) -> int:
        """Tokens the context holds."""
        self._alive()
        return L.lib().frugal_context_n_ctx(self._ctx)

    # ------------------------------------------------------------ tokens
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = True) -> List[int]:
        """Token ids of text (BOS as the model's metadata says when add_special)."""
        self._alive()
        if not isinstance(text, str):
            raise TypeError("text must be a str, not %s" % type(text).__name__)
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        while True:
            buf = (ctypes.c_int32 * cap)()
            n = L.lib().frugal_tokenize(self._model, raw, len(raw), int(bool(add_special)),
                                        int(bool(parse_special)), buf, cap)
            if n >= 0:
                return list(buf[:n])
            if n == -2**31 or -n <= cap:  # INT32_MIN: failed (out of memory)
                raise FrugalError(L.FRUGAL_E_INTERNAL, "tokenizing failed")
            cap = -n

    def detokenize(self, tokens: Sequence[int], remove_special: bool = True) -> str:
        """The text of a token sequence (invalid UTF-8 replaced by U+FFFD)."""
        self._alive()
        ids = self._ids(tokens)
        cap = 16 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = L.lib().frugal_detokenize(self._model, ids, len(ids), buf, cap, int(bool(remove_special)), 0)
            if n >= 0:
                return buf.raw[:n].decode("utf-8", "replace")
            cap = -n + 1

    def _ids(self, tokens: Sequence[int]) -> "ctypes.Array[ctypes.c_int32]":
        if isinstance(tokens, (str, bytes)) or not hasattr(tokens, "__len__"):
            raise TypeError("tokens must be a sequence of ints")
        for t in tokens:
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError("tokens must be ints, got %s" % type(t).__name__)
            if not 0 <= t < self.n_vocab:
                raise ValueError("token %d is outside the vocabulary (0..%d)" % (t, self.n_vocab - 1))
        return (ctypes.c_int32 * len(tokens))(*tokens)

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = L.lib().frugal_token_to_piece(self._model, token, buf, 256, 0)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.lib().frugal_token_to_piece(self._model, token, buf, -n, 0)
        return buf.raw[:max(n, 0)]

    # ------------------------------------------------------------ evaluation
    def _eval(self, ids: Sequence[int]) -> None:
        err = L.Error()
        arr = (ctypes.c_int32 * len(ids))(*ids)
        rc = L.lib().frugal_eval(self._ctx, arr, len(ids), 0, ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            self._last_logits_ok = False
            _raise(err, rc)
        self._last_logits_ok = True

    def logits(self, prompt: Union[str, Sequence[int], None] = None) -> Any:
        """Next-token logits (n_vocab floats): after evaluating prompt (text or token
        ids) from an empty cache when given, else of the last evaluated token. A numpy
        array when numpy is installed, else a list."""
        self._alive()
        if prompt is not None:
            ids = self.tokenize(prompt) if isinstance(prompt, str) else list(self._ids(prompt))
            if not ids:
                raise ValueError("the prompt is empty (no tokens)")
            L.lib().frugal_context_reset(self._ctx)
            self._eval(ids)
        if not self._last_logits_ok:
            raise FrugalError(L.FRUGAL_E_INVALID_ARG, "no logits yet: evaluate a prompt first")
        p = L.lib().frugal_get_logits(self._ctx, -1)
        if not p:
            raise FrugalError(L.FRUGAL_E_INTERNAL, "no logits available")
        try:
            import numpy as np
        except ImportError:
            return p[:self.n_vocab]
        return np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy()

    # ------------------------------------------------------------ generation
    def _sampler(self, temperature: float, top_k: int, top_p: float, seed: Optional[int]) -> ctypes.c_void_p:
        sp = L.SamplerParams()
        L.lib().frugal_sampler_params_default(ctypes.byref(sp))
        sp.temp = _check_float(temperature, "temperature")
        sp.top_k = _check_int(top_k, "top_k", 0)
        sp.top_p = _check_float(top_p, "top_p")
        if seed is None:
            seed = random.getrandbits(64)
        sp.seed = _check_int(seed, "seed", 0, (1 << 64) - 1)
        s = L.lib().frugal_sampler_new(ctypes.byref(sp))
        if not s:
            raise MemoryError("frugal_sampler_new failed")
        return ctypes.c_void_p(s)

    def _run(self, prompt: Union[str, Sequence[int]], max_tokens: int, temperature: float, top_k: int,
             top_p: float, seed: Optional[int], stop: Union[str, Sequence[str], None], add_special: bool,
             result: GenerateResult) -> Iterator[str]:
        """The generation loop: yields text pieces, fills result as it goes."""
        self._alive()
        _check_int(max_tokens, "max_tokens", 0)
        if stop is None:
            stops: List[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        elif all(isinstance(s, str) for s in stop):
            stops = [s for s in stop if s]
        else:
            raise TypeError("stop must be a str or a list of str")
        if isinstance(prompt, str):
            ids = self.tokenize(prompt, add_special=add_special)
        else:
            ids = list(self._ids(prompt))
        if not ids:
            raise ValueError("the prompt is empty (no tokens)")
        n_ctx = self.n_ctx
        if len(ids) >= n_ctx:
            raise FrugalError(L.FRUGAL_E_CONTEXT_FULL, "the prompt is %d tokens but the context holds %d"
                              % (len(ids), n_ctx))
        max_tokens = min(max_tokens, n_ctx - len(ids))
        lib = L.lib()
        smpl = self._sampler(temperature, top_k, top_p, seed)
        try:
            lib.frugal_context_reset(self._ctx)
            for t in ids:
                lib.frugal_sampler_accept(smpl, t)
            t0 = time.perf_counter()
            self._eval(ids)
            t1 = time.perf_counter()
            result.timings.update(n_prompt=len(ids), prompt_ms=(t1 - t0) * 1e3)
            dec = codecs.getincrementaldecoder("utf-8")("replace")
            text, shown, ttft, cut = "", 0, None, -1
            hold = max((len(s) for s in stops), default=1) - 1
            for k in range(max_tokens):
                tok = lib.frugal_sampler_sample(smpl, lib.frugal_get_logits(self._ctx, -1), self.n_vocab)
                if ttft is None:
                    ttft = (time.perf_counter() - t0) * 1e3
                lib.frugal_sampler_accept(smpl, tok)
                if lib.frugal_token_is_eog(self._model, tok):
                    result.finish_reason = "stop"
                    break
                result.tokens.append(tok)
                text += dec.decode(self._piece(tok))
                cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    text = text[:cut]
                    result.finish_reason = "stop"
                    break
                safe = len(text) - hold if stops else len(text)
                if safe > shown:
                    yield text[shown:safe]
                    shown = safe
                if k + 1 < max_tokens:
                    ts = time.perf_counter()
                    self._eval([tok])
                    # the safety policy's degrade steps and duty-cycle pause (none: no-op)
                    lib.frugal_safety_step(self._ctx, time.perf_counter() - ts)
            if cut < 0:
                text += dec.decode(b"", final=True)
            if len(text) > shown:
                yield text[shown:]
            result.text = text
            t2 = time.perf_counter()
            n_gen = len(result.tokens)
            result.timings.update(n_gen=n_gen, gen_ms=(t2 - t1) * 1e3, ttft_ms=ttft or 0.0,
                                  prompt_tok_s=len(ids) / max(t1 - t0, 1e-9),
                                  gen_tok_s=n_gen / max(t2 - t1, 1e-9) if n_gen else 0.0)
        finally:
            lib.frugal_sampler_free(smpl)

    def generate(self, prompt: Union[str, Sequence[int]], max_tokens: int = 128, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, seed: Optional[int] = None,
                 stop: Union[str, Sequence[str], None] = None) -> GenerateResult:
        """Generate up to max_tokens after prompt (text, BOS added as the model says, or
        token ids). temperature <= 0 is greedy; seed None is random. Stops at an
        end-of-generation token or the first stop string (not included in .text)."""
        res = GenerateResult("", [])
        for _ in self._run(prompt, max_tokens, temperature, top_k, top_p, seed, stop, True, res):
            pass
        return res

    def stream(self, prompt: Union[str, Sequence[int]], max_tokens: int = 128, temperature: float = 0.8,
               top_k: int = 40, top_p: float = 0.95, seed: Optional[int] = None,
               stop: Union[str, Sequence[str], None] = None) -> Iterator[str]:
        """Like generate(), as an iterator of text pieces (their concatenation is
        generate()'s .text for the same arguments and seed)."""
        return self._run(prompt, max_tokens, temperature, top_k, top_p, seed, stop, True,
                         GenerateResult("", []))

    def chat_template(self) -> str:
        """The name of the chat format used: the model's, or chatml when it has none
        frugal knows."""
        self._alive()
        t = L.lib().frugal_chat_template_of(self._model)
        return L.lib().frugal_chat_template_name(t if t >= 0 else 0).decode()

    def render_chat(self, messages: Sequence[Dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text messages ([{"role": ..., "content": ...}]) render to."""
        self._alive()
        if isinstance(messages, (str, bytes, dict)) or not hasattr(messages, "__iter__"):
            raise TypeError("messages must be a list of {'role': str, 'content': str} dicts")
        msgs = list(messages)
        arr = (L.ChatMsg * max(len(msgs), 1))()
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise TypeError("messages[%d] must be a dict with str 'role' and 'content'" % i)
            arr[i].role, arr[i].content = m["role"].encode(), m["content"].encode()
        lib = L.lib()
        tmpl = lib.frugal_chat_template_parse(self.chat_template().encode())
        n = lib.frugal_chat_render(tmpl, arr, len(msgs), int(bool(add_generation_prompt)), None, 0)
        if n < 0:
            raise FrugalError(-n, "rendering the chat failed")
        buf = ctypes.create_string_buffer(n + 1)
        lib.frugal_chat_render(tmpl, arr, len(msgs), int(bool(add_generation_prompt)), buf, n + 1)
        return buf.raw[:n].decode("utf-8", "replace")

    def chat(self, messages: Sequence[Dict[str, str]], max_tokens: int = 128, temperature: float = 0.8,
             top_k: int = 40, top_p: float = 0.95, seed: Optional[int] = None,
             stop: Union[str, Sequence[str], None] = None) -> GenerateResult:
        """The assistant's answer to messages in the model's chat template (the turn's
        end marker is an extra stop string)."""
        prompt = self.render_chat(messages)
        marker = L.lib().frugal_chat_end_marker(L.lib().frugal_chat_template_parse(self.chat_template().encode()))
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if marker:
            stops.append(marker.decode())
        return self.generate(prompt, max_tokens, temperature, top_k, top_p, seed, stops)

    # ------------------------------------------------------------ safety policy
    def set_safety_policy(self, max_temp: Optional[float] = None, max_gpu_temp: Optional[float] = None,
                          max_util: Optional[float] = None, max_gpu_util: Optional[float] = None,
                          max_power: Optional[float] = None, min_free: Union[int, str, None] = None,
                          max_psi: Optional[float] = None, duty: float = 0.5, interval_ms: int = 1000,
                          verbose: bool = False) -> None:
        """Watch the machine while generating (frugal_set_safety_policy): above a
        temperature (C), utilisation (%) or power (W) limit decoding pauses so that it
        computes `duty` of the time; below min_free bytes ("512M") of memory room or
        above max_psi it degrades (see frugal.h). None: no limit. Raises FrugalError
        (FRUGAL_E_INVALID_ARG) on a bad value."""
        self._alive()
        p = L.SafetyPolicy()
        L.lib().frugal_safety_policy_default(ctypes.byref(p))
        for name, value in (("max_temp", max_temp), ("max_gpu_temp", max_gpu_temp), ("max_util", max_util),
                            ("max_gpu_util", max_gpu_util), ("max_power", max_power), ("max_psi", max_psi)):
            if value is not None:
                setattr(p, name, _check_float(value, name))
        p.min_free = _size(min_free, "min_free")
        p.duty = _check_float(duty, "duty")
        p.interval_ms = _check_int(interval_ms, "interval_ms", 10, 60000)
        p.verbose = 1 if verbose else 0
        err = L.Error()
        rc = L.lib().frugal_set_safety_policy(self._ctx, ctypes.byref(p), ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            _raise(err, rc)

    def clear_safety_policy(self) -> None:
        """Stop watching; the degrade steps taken are undone."""
        self._alive()
        L.lib().frugal_set_safety_policy(self._ctx, None, None)

    def readings(self) -> Dict[str, Any]:
        """The policy's latest readings and what it did (frugal_readings; unavailable
        readings are None). Raises FrugalError when no policy is set."""
        self._alive()
        r, err = L.Readings(), L.Error()
        rc = L.lib().frugal_get_readings(self._ctx, ctypes.byref(r), ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            _raise(err, rc)
        out: Dict[str, Any] = {}
        for k, t in L.Readings._fields_:
            v = getattr(r, k)
            unavailable = (t is ctypes.c_double and v != v) or (t is ctypes.c_int64 and v < 0)
            out[k] = None if unavailable else v
        return out

    # ------------------------------------------------------------ memory
    def plan(self, mem: Union[int, str, None] = None, n_ctx: int = 0) -> Dict[str, Any]:
        """How the model runs inside a memory budget (bytes or "2G"; None: no cap):
        a dict of frugal_plan's fields (resident/streamed layers, forecast peak...).
        Raises FrugalError (FRUGAL_E_NOMEM) when even streaming every layer does not fit."""
        self._alive()
        budget = _size(mem, "mem")
        _check_int(n_ctx, "n_ctx", 0, 1 << 24)
        out, err = L.Plan(), L.Error()
        rc = L.lib().frugal_plan_memory(self._model, budget, n_ctx, self._kv_type, self._threads, 0.0, 0.0,
                                        ctypes.byref(out), ctypes.byref(err))
        if rc != L.FRUGAL_OK:
            _raise(err, rc)
        return {k: getattr(out, k) for k, _ in L.Plan._fields_}
