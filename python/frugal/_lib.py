"""_lib.py - finds libfrugal and declares the C API (include/frugal.h) for ctypes.

The structures below mirror frugal.h field for field; a change there must be made
here too (tests/test_python.sh runs the package against the freshly built library).
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t,
                    c_uint64, c_void_p)
from typing import List, Optional

FRUGAL_OK = 0
FRUGAL_E_IO = 1
FRUGAL_E_FORMAT = 2
FRUGAL_E_UNSUPPORTED = 3
FRUGAL_E_NOMEM = 4
FRUGAL_E_INVALID_ARG = 5
FRUGAL_E_CONTEXT_FULL = 6
FRUGAL_E_INTERNAL = 7


class Error(ctypes.Structure):
    _fields_ = [("code", c_int), ("message", c_char * 512)]


class ModelParams(ctypes.Structure):
    _fields_ = [("n_threads", c_int), ("verbose", c_int), ("vocab_only", c_int),
                ("mem_budget", c_uint64), ("no_repack", c_int),
                ("n_gpu_layers", c_int), ("vram_budget", c_uint64), ("gpu_stream", c_int)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("arch", c_char_p), ("name", c_char_p), ("n_vocab", c_int),
                ("n_ctx_train", c_int), ("n_embd", c_int), ("n_layer", c_int),
                ("n_head", c_int), ("n_head_kv", c_int), ("n_ff", c_int),
                ("n_params", c_uint64), ("weight_bytes", c_uint64), ("type_name", c_char_p)]


class ContextParams(ctypes.Structure):
    _fields_ = [("n_ctx", c_int), ("n_threads", c_int), ("kv_type", c_int),
                ("kv_window", c_int), ("kv_sinks", c_int), ("kv_chunk", c_int),
                ("kv_keep", c_int), ("kv_slots", c_int), ("n_seq_max", c_int),
                ("n_ctx_pool", c_int), ("mem_budget", c_uint64), ("kv_disk_dir", c_char_p),
                ("kv_ram_bytes", c_uint64)]


class SamplerParams(ctypes.Structure):
    _fields_ = [("temp", c_float), ("top_k", c_int), ("top_p", c_float), ("min_p", c_float),
                ("repeat_penalty", c_float), ("repeat_last_n", c_int),
                ("freq_penalty", c_float), ("presence_penalty", c_float), ("seed", c_uint64)]


class Plan(ctypes.Structure):
    _fields_ = [("budget_bytes", c_uint64), ("n_layer", c_int), ("n_ctx", c_int),
                ("streaming", c_int), ("resident_layers", c_int), ("streamed_layers", c_int),
                ("io_buffers", c_int), ("resident_bytes", c_uint64), ("streamed_bytes", c_uint64),
                ("io_bytes", c_uint64), ("always_bytes", c_uint64), ("kv_bytes", c_uint64),
                ("scratch_bytes", c_uint64), ("overhead_bytes", c_uint64), ("min_bytes", c_uint64),
                ("forecast_peak_bytes", c_uint64), ("mem_bw_gbs", c_double),
                ("disk_bw_gbs", c_double), ("tok_s_bound", c_double), ("tok_s_overlap", c_double),
                ("expert_streaming", c_int), ("experts", c_int), ("expert_slots", c_int),
                ("dense_bytes", c_uint64), ("expert_cache_bytes", c_uint64), ("expert_slot_bytes", c_uint64),
                ("expert_hit_uniform", c_double), ("expert_read_per_token", c_double)]


class SafetyPolicy(ctypes.Structure):
    _fields_ = [("max_temp", c_double), ("max_gpu_temp", c_double), ("max_util", c_double),
                ("max_gpu_util", c_double), ("max_power", c_double), ("min_free", c_uint64),
                ("max_psi", c_double), ("duty", c_double), ("interval_ms", c_int), ("verbose", c_int)]


class Readings(ctypes.Structure):
    _fields_ = [("cpu_temp_c", c_double), ("cpu_freq_mhz", c_double), ("cpu_util_pct", c_double),
                ("cpu_watts", c_double), ("psi_some_avg10", c_double), ("throttle_count", c_int64),
                ("mem_available", c_int64), ("cgroup_limit", c_int64), ("cgroup_usage", c_int64),
                ("mem_room", c_int64), ("gpu_temp_c", c_double), ("gpu_util_pct", c_double),
                ("gpu_watts", c_double), ("gpu_mem_used", c_int64), ("gpu_mem_total", c_int64),
                ("peak_cpu_temp_c", c_double), ("peak_gpu_temp_c", c_double), ("avg_watts", c_double),
                ("throttled_s", c_double), ("throttled_step_s", c_double), ("throttling", c_int),
                ("degrade_level", c_int), ("n_throttle_on", c_uint64), ("n_degrade", c_uint64),
                ("n_recover", c_uint64), ("n_polls", c_uint64), ("poll_cpu_s", c_double),
                ("poll_wall_s", c_double), ("vk_mem_used", c_int64), ("vk_mem_budget", c_int64),
                ("vk_heap_budget", c_int64), ("vk_heap_usage", c_int64)]


class ChatMsg(ctypes.Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


def _candidates() -> List[str]:
    """Where libfrugal may be, in the order the package documents."""
    out = []
    env = os.environ.get("FRUGAL_LIB")
    if env:
        return [env]  # an explicit choice is not second-guessed
    here = os.path.dirname(os.path.abspath(__file__))
    out.append(os.path.join(here, "libfrugal.so"))
    # a checkout: python/frugal/ -> build/
    out.append(os.path.join(here, "..", "..", "build", "libfrugal.so"))
    found = ctypes.util.find_library("frugal")
    if found:
        out.append(found)
    for prefix in ("/usr/local/lib", "/usr/lib", "/usr/local/lib64", "/usr/lib64"):
        out.append(os.path.join(prefix, "libfrugal.so"))
    return out


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of every function the package calls."""
    P = POINTER
    sig = {
        "frugal_status_str": (c_char_p, [c_int]),
        "frugal_model_params_default": (None, [P(ModelParams)]),
        "frugal_model_load": (c_int, [c_char_p, P(ModelParams), P(c_void_p), P(Error)]),
        "frugal_model_free": (None, [c_void_p]),
        "frugal_model_get_info": (None, [c_void_p, P(ModelInfo)]),
        "frugal_model_meta_str": (c_char_p, [c_void_p, c_char_p]),
        "frugal_tokenize": (c_int, [c_void_p, c_char_p, c_size_t, c_int, c_int, P(c_int32), c_int]),
        "frugal_token_to_piece": (c_int, [c_void_p, c_int32, P(c_char), c_int, c_int]),
        "frugal_detokenize": (c_int, [c_void_p, P(c_int32), c_int, P(c_char), c_int, c_int, c_int]),
        "frugal_token_is_eog": (c_int, [c_void_p, c_int32]),
        "frugal_kv_type_parse": (c_int, [c_char_p]),
        "frugal_context_params_default": (None, [P(ContextParams)]),
        "frugal_context_new": (c_int, [c_void_p, P(ContextParams), P(c_void_p), P(Error)]),
        "frugal_context_free": (None, [c_void_p]),
        "frugal_context_n_ctx": (c_int, [c_void_p]),
        "frugal_context_pos": (c_int, [c_void_p]),
        "frugal_context_reset": (None, [c_void_p]),
        "frugal_eval": (c_int, [c_void_p, P(c_int32), c_int, c_int, P(Error)]),
        "frugal_get_logits": (P(c_float), [c_void_p, c_int]),
        "frugal_sampler_params_default": (None, [P(SamplerParams)]),
        "frugal_sampler_new": (c_void_p, [P(SamplerParams)]),
        "frugal_sampler_free": (None, [c_void_p]),
        "frugal_sampler_sample": (c_int32, [c_void_p, P(c_float), c_int]),
        "frugal_sampler_accept": (None, [c_void_p, c_int32]),
        "frugal_parse_size": (c_int, [c_char_p, P(c_uint64)]),
        "frugal_plan_memory": (c_int, [c_void_p, c_uint64, c_int, c_int, c_int, c_double, c_double,
                                       P(Plan), P(Error)]),
        "frugal_chat_template_of": (c_int, [c_void_p]),
        "frugal_chat_template_parse": (c_int, [c_char_p]),
        "frugal_chat_template_name": (c_char_p, [c_int]),
        "frugal_chat_render": (c_int, [c_int, P(ChatMsg), c_int, c_int, P(c_char), c_size_t]),
        "frugal_chat_end_marker": (c_char_p, [c_int]),
        "frugal_peak_rss": (c_uint64, []),
        "frugal_safety_policy_default": (None, [P(SafetyPolicy)]),
        "frugal_set_safety_policy": (c_int, [c_void_p, P(SafetyPolicy), P(Error)]),
        "frugal_get_readings": (c_int, [c_void_p, P(Readings), P(Error)]),
        "frugal_safety_step": (c_double, [c_void_p, c_double]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


_LIB: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use). Raises OSError naming every place
    that was tried when none holds a loadable libfrugal."""
    global _LIB
    if _LIB is None:
        tried = []
        for cand in _candidates():
            if os.path.sep in cand and not os.path.exists(cand):
                tried.append(cand + " (absent)")
                continue
            try:
                loaded = ctypes.CDLL(cand)
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
                continue
            _declare(loaded)
            _LIB = loaded
            break
        else:
            raise OSError("libfrugal not found; build it (cmake --build build) or set FRUGAL_LIB. "
                          "Tried: " + "; ".join(tried))
    return _LIB


def lib_path() -> str:
    """The file the loaded library came from."""
    return lib()._name
