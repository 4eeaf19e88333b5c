"""pip install --no-build-isolation ./python

Builds the pybind11 module (target facerec_python) with CMake against this
checkout's C++ library and installs it with the package's Python files.
Offline: Debian's setuptools, CMake, Ninja and pybind11-dev only.

Environment: FACEREC_BUILD_DIR (the CMake build folder; default the
checkout's build/, reused when configured), FACEREC_ORT_ROOT (ONNX Runtime
prefix for a first configure; default the one scripts/setup.sh caches).
The module finds libonnxruntime through its rpath: the absolute folder of
the ONNX Runtime it was built against, which must stay where it is.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = Path(os.environ.get("FACEREC_BUILD_DIR", ROOT / "build")).resolve()
        python = os.path.realpath(sys.executable)  # a venv's python is a link to the base interpreter
        cache = build / "CMakeCache.txt"
        args = ["cmake", "-S", str(ROOT), "-B", str(build), "-DFACEREC_PYTHON=ON"]
        if not cache.exists():
            args += ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", f"-DPYTHON_EXECUTABLE={python}"]
            if os.environ.get("FACEREC_ORT_ROOT"):
                args.append(f"-DFACEREC_ORT_ROOT={os.environ['FACEREC_ORT_ROOT']}")
            subprocess.check_call(args)
        else:
            # Reuse the configured build; reconfigure only when it was made for
            # another interpreter (the module's ABI is the interpreter's).
            configured = {}
            for line in cache.read_text().splitlines():
                if "=" in line and ":" in line.split("=", 1)[0]:
                    k, v = line.split("=", 1)
                    configured[k.split(":", 1)[0]] = v
            if (configured.get("FACEREC_PYTHON") not in ("ON", "1", "TRUE") or
                    os.path.realpath(configured.get("PYTHON_EXECUTABLE", "")) != python):
                subprocess.check_call(args + [f"-DPYTHON_EXECUTABLE={python}"])
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.check_call(["cmake", "--build", str(build), "--target", "facerec_python", "-j", jobs])
        suffix = Path(self.get_ext_filename(ext.name)).name.split(".", 1)[1]
        built = build / "python" / "facerec" / f"_facerec.{suffix}"
        if not built.exists():
            raise RuntimeError(f"CMake did not produce {built}")
        dest = Path(self.get_ext_fullpath(ext.name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, dest)


setup(
    name="facerec",
    version="0.1.0",
    description="Face recognition (detect, align, embed, identify) over the facerec C++ library",
    packages=["facerec"],
    ext_modules=[Extension("facerec._facerec", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy"],
    zip_safe=False,
)
