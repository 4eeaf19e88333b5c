"""Shared by python/tests: imports `facerec` from the CMake build tree (build/python, the target
facerec_python), unless FACEREC_PYTHON_INSTALLED=1 asks for the installed one.
Skips loudly when the module or ../shared is absent."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
BIN = Path(os.environ.get("FACEREC_BIN", BUILD / "facerec"))
SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CELEB = SHARED / "data" / "celeb5"

if os.environ.get("FACEREC_PYTHON_INSTALLED") != "1":
    sys.path.insert(0, str(BUILD / "python"))


def loud_skip(msg):
    msg = f"!!!!! SKIPPING: {msg}. These tests did NOT run. !!!!!"
    print("\n" + msg + "\n", file=sys.stderr)
    pytest.skip(msg, allow_module_level=True)
