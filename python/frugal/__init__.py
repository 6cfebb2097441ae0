"""frugal - Python bindings (pure Python, ctypes) for the frugal LLM inference engine.

    from frugal import Engine
    with Engine.load("model.gguf", n_ctx=512) as eng:
        print(eng.generate("Hello", max_tokens=32).text)
"""
from ._lib import lib_path
from .engine import Engine, FrugalError, GenerateResult

__all__ = ["Engine", "FrugalError", "GenerateResult", "lib_path"]
__version__ = "0.1.0"
