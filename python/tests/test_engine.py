"""Tests of the frugal Python package against the fortune model in ../shared.

Env: FRUGAL_LIB (the library under test), FRUGAL_SHARED_DIR (test data; the model
tests skip without it). Every public method is exercised, and the error paths:
missing file, corrupted GGUF, bad argument types and values, a closed engine.
"""
import warnings
import os
import shutil

import pytest

import frugal
from frugal import Engine, FrugalError

SHARED = os.environ.get("FRUGAL_SHARED_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared")
MODEL = os.path.join(SHARED, "models", "fortune-3m-q8_0.gguf")
needs_model = pytest.mark.skipif(not os.path.isfile(MODEL), reason="fortune model not found in ../shared")
PROMPT = "The meaning of life is"


@pytest.fixture(scope="module")
def eng():
    e = Engine.load(MODEL, n_ctx=256, threads=2)
    yield e
    e.close()


def test_lib_path_names_the_library():
    assert os.path.basename(frugal.lib_path()).startswith("libfrugal")


def test_frugal_lib_override_is_used_and_reported(tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, FRUGAL_LIB=str(tmp_path / "libnone.so"))
    code = "import frugal; frugal.Engine.load('x.gguf')"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=os.path.join(os.path.dirname(__file__), ".."))
    assert r.returncode != 0 and "libfrugal not found" in r.stderr and "libnone.so" in r.stderr


# ---------------------------------------------------------------- load errors
def test_missing_file_raises_with_the_c_message(tmp_path):
    path = tmp_path / "none.gguf"
    with pytest.raises(FrugalError) as ei:
        Engine.load(str(path))
    assert "none.gguf" in str(ei.value) and ei.value.code == 1  # FRUGAL_E_IO


def test_corrupted_gguf_raises(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(FrugalError) as ei:
        Engine.load(str(bad))
    assert "bad.gguf" in ei.value.message and ei.value.code == 2  # FRUGAL_E_FORMAT


@needs_model
def test_truncated_model_raises(tmp_path):
    cut = tmp_path / "cut.gguf"
    with open(MODEL, "rb") as f:
        cut.write_bytes(f.read(os.path.getsize(MODEL) // 2))
    with pytest.raises(FrugalError) as ei:
        Engine.load(str(cut))
    assert ei.value.code == 2 and "cut.gguf" in ei.value.message


@pytest.mark.parametrize("kwargs, exc", [
    ({"n_ctx": "256"}, TypeError), ({"threads": 1.5}, TypeError), ({"mem": [1]}, TypeError),
    ({"kv_type": 3}, TypeError), ({"kv_type": "f64"}, ValueError), ({"mem": "lots"}, ValueError),
    ({"n_ctx": -1}, ValueError), ({"n_gpu_layers": "all"}, TypeError),
])
def test_bad_load_arguments(kwargs, exc):
    with pytest.raises(exc):
        Engine.load(MODEL, **kwargs)


def test_bad_path_type():
    with pytest.raises(TypeError):
        Engine.load(42)


@needs_model
def test_gpu_layers_on_the_device_or_warn_and_run_on_cpu():
    # with a Vulkan device (lavapipe in CI) the layers go there; without one it warns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Engine.load(MODEL, n_ctx=64, n_gpu_layers=10) as e:
            assert e.n_ctx == 64
            assert len(e.generate("Once", max_tokens=4, temperature=0).tokens) == 4
    assert all("no GPU" in str(w.message) for w in caught)


@needs_model
def test_too_small_budget_is_a_frugal_error():
    with pytest.raises(FrugalError) as ei:
        Engine.load(MODEL, mem="1M")
    assert ei.value.code == 4  # FRUGAL_E_NOMEM, the message names the minimum


# ---------------------------------------------------------------- tokens
@needs_model
def test_tokenize_detokenize_round_trip(eng):
    ids = eng.tokenize("hello world")
    assert ids[0] == 1 and len(ids) > 2  # BOS first (SentencePiece model)
    assert eng.tokenize("hello world", add_special=False) == ids[1:]
    assert eng.detokenize(ids).strip() == "hello world"
    with pytest.raises(TypeError):
        eng.tokenize(b"bytes")
    with pytest.raises(TypeError):
        eng.detokenize("not ids")
    with pytest.raises(ValueError):
        eng.detokenize([10 ** 9])


# ---------------------------------------------------------------- generation
@needs_model
def test_generate_greedy_matches_cli_text(eng):
    r = eng.generate(PROMPT, max_tokens=24, temperature=0, seed=1)
    # the CLI's greedy output for this prompt (frugal run ... --temp 0 -n 24)
    assert r.text.startswith(" allowed.\n\t\t-- John Keelson")
    assert len(r.tokens) == 24 and r.finish_reason == "length"
    assert eng.detokenize(r.tokens).strip() == r.text.strip()
    t = r.timings
    assert t["n_prompt"] == len(eng.tokenize(PROMPT)) and t["n_gen"] == 24
    assert t["prompt_ms"] > 0 and t["gen_ms"] > 0 and t["gen_tok_s"] > 0


@needs_model
def test_same_seed_same_text(eng):
    a = eng.generate(PROMPT, max_tokens=20, temperature=0.9, seed=7)
    b = eng.generate(PROMPT, max_tokens=20, temperature=0.9, seed=7)
    assert a.text == b.text and a.tokens == b.tokens


@needs_model
def test_stream_concatenates_to_generate(eng):
    kw = dict(max_tokens=30, temperature=0.8, top_k=20, top_p=0.9, seed=3)
    pieces = list(eng.stream(PROMPT, **kw))
    assert len(pieces) > 1 and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == eng.generate(PROMPT, **kw).text


@needs_model
def test_stop_string_cuts_the_text(eng):
    full = eng.generate(PROMPT, max_tokens=24, temperature=0, seed=1).text
    r = eng.generate(PROMPT, max_tokens=24, temperature=0, seed=1, stop=["Keelson"])
    assert r.text == full[:full.index("Keelson")] and r.finish_reason == "stop"
    assert "".join(eng.stream(PROMPT, max_tokens=24, temperature=0, seed=1, stop="Keelson")) == r.text


@needs_model
def test_generate_from_token_ids(eng):
    ids = eng.tokenize(PROMPT)
    assert eng.generate(ids, max_tokens=8, temperature=0).text == eng.generate(PROMPT, max_tokens=8, temperature=0).text


@pytest.mark.parametrize("kwargs, exc", [
    ({"max_tokens": "8"}, TypeError), ({"temperature": "hot"}, TypeError), ({"top_k": 1.5}, TypeError),
    ({"seed": -1}, ValueError), ({"stop": [1, 2]}, TypeError), ({"max_tokens": -1}, ValueError),
])
@needs_model
def test_bad_generate_arguments(eng, kwargs, exc):
    with pytest.raises(exc):
        eng.generate(PROMPT, **kwargs)


@needs_model
def test_bad_prompts(eng):
    with pytest.raises(TypeError):
        eng.generate(123)
    with pytest.raises(FrugalError) as ei:
        eng.generate("word " * 400, max_tokens=4)  # longer than the 256-token context
    assert ei.value.code == 6


@needs_model
def test_logits_argmax_is_the_greedy_token(eng):
    lg = eng.logits(PROMPT)
    first = eng.generate(PROMPT, max_tokens=1, temperature=0).tokens[0]
    assert len(lg) == eng.n_vocab
    assert max(range(len(lg)), key=lambda i: lg[i]) == first
    try:
        import numpy as np
        assert isinstance(lg, np.ndarray) and lg.dtype == np.float32
    except ImportError:
        assert isinstance(lg, list)


@needs_model
def test_chat_uses_the_template(eng):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a fortune"}]
    assert eng.chat_template() == "chatml"  # the fortune model has none: the documented fallback
    text = eng.render_chat(msgs)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTell me a fortune<|im_end|>\n"
                    "<|im_start|>assistant\n")
    r = eng.chat(msgs, max_tokens=16, temperature=0)
    assert r.text == eng.generate(text, max_tokens=16, temperature=0, stop="<|im_end|>").text
    with pytest.raises(TypeError):
        eng.chat("hello")
    with pytest.raises(TypeError):
        eng.chat([{"role": "user"}])


@needs_model
def test_plan(eng):
    p = eng.plan(mem="64M")
    assert p["budget_bytes"] == 64 << 20 and p["n_layer"] == eng.info["n_layer"]
    assert 0 < p["min_bytes"] <= p["forecast_peak_bytes"] <= 64 << 20
    assert eng.plan()["budget_bytes"] == 0
    with pytest.raises(FrugalError) as ei:
        eng.plan(mem=1024)
    assert ei.value.code == 4 and "minimum" in ei.value.message.lower()
    with pytest.raises(TypeError):
        eng.plan(mem=1.5)


@needs_model
def test_info(eng):
    assert eng.info["arch"] == "llama" and eng.info["n_vocab"] == eng.n_vocab > 0


@needs_model
def test_context_manager_frees_and_closed_engine_refuses():
    with Engine.load(MODEL, n_ctx=64) as e:
        assert e.generate("Hi", max_tokens=2, temperature=0).tokens
    assert e._model is None and e._ctx is None
    with pytest.raises(FrugalError, match="closed"):
        e.generate("Hi")
    e.close()  # idempotent


@needs_model
def test_safety_policy_throttles_on_a_fake_sysfs(eng, tmp_path, monkeypatch):
    hw = tmp_path / "sys" / "class" / "hwmon" / "hwmon0"
    hw.mkdir(parents=True)
    (hw / "name").write_text("coretemp\n")
    (hw / "temp1_input").write_text("92000\n")
    monkeypatch.setenv("FRUGAL_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("FRUGAL_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
    ref = eng.generate("The meaning of life is", max_tokens=24, temperature=0).tokens
    with pytest.raises(FrugalError):
        eng.readings()  # no policy yet
    eng.set_safety_policy(max_temp=80, max_gpu_temp=70, max_gpu_util=90, duty=0.5, interval_ms=50)
    out = eng.generate("The meaning of life is", max_tokens=24, temperature=0)
    r = eng.readings()
    assert out.tokens == ref
    assert r["cpu_temp_c"] == 92.0 and r["throttling"] == 1 and r["n_throttle_on"] == 1
    assert r["gpu_temp_c"] is None  # no NVML
    assert r["throttled_s"] > 0 and r["throttled_step_s"] > 0
    (hw / "temp1_input").write_text("60000\n")
    eng.set_safety_policy(max_temp=80)  # a fresh policy reads the cooler sensor
    assert eng.readings()["throttling"] == 0
    eng.clear_safety_policy()
    with pytest.raises(FrugalError):
        eng.readings()


@needs_model
def test_safety_policy_bad_values(eng):
    with pytest.raises(FrugalError, match="duty"):
        eng.set_safety_policy(duty=0)
    with pytest.raises(FrugalError, match="max_temp"):
        eng.set_safety_policy(max_temp=-3)
    with pytest.raises(TypeError):
        eng.set_safety_policy(max_temp="hot")
