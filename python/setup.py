"""setup.py - only copies a built libfrugal.so into the package (no compilation).

When FRUGAL_LIB names the library, or the repository's build tree (../build) has one,
it goes next to the package's modules, so an installed package finds it without a
path. Without either, the package looks for an installed libfrugal at import time.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _built_library():
    for cand in (os.environ.get("FRUGAL_LIB"), os.path.join(HERE, "..", "build", "libfrugal.so")):
        if cand and os.path.isfile(cand):
            return os.path.realpath(cand)
    return None


class BuildPyWithLib(build_py):
    def run(self):
        super().run()
        lib = _built_library()
        if lib:
            dst = os.path.join(self.build_lib, "frugal", "libfrugal.so")
            shutil.copyfile(lib, dst)


setup(cmdclass={"build_py": BuildPyWithLib})
