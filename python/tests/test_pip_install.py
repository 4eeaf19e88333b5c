"""The README's install path: `pip install --no-build-isolation ./python` into
a fresh virtual environment (Debian's pip and setuptools, --no-index: no
network), then `import facerec` from elsewhere finds the installed module and
its libonnxruntime (rpath). Reuses the configured build (FACEREC_BUILD_DIR),
so it costs a venv and a copy, not a compile."""
import os
import subprocess
import sys

import pytest

from pysupport import BUILD, CELEB, ROOT, loud_skip

if not (BUILD / "python" / "facerec").is_dir():
    loud_skip(f"{BUILD / 'python' / 'facerec'} is ABSENT (the facerec_python target was not built)")
if not CELEB.is_dir():
    loud_skip(f"{CELEB} is ABSENT")


def test_pip_install_from_the_checkout(tmp_path):
    venv = tmp_path / "venv"
    # Debian's pip from the system site-packages; the venv is not externally managed.
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = dict(os.environ, FACEREC_BUILD_DIR=str(BUILD), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-build-isolation", "--no-index", str(ROOT / "python")],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    photo = CELEB / "val" / "elton_john" / "1.jpg"
    code = ("import facerec, json; r = facerec.Recognizer(gallery='none', threads=1); "
            f"f = r.detect({str(photo)!r}); print(json.dumps([facerec.__file__, len(f), f[0].embedding.shape[0]]))")
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    where, faces, dim = json.loads(out.stdout.strip().splitlines()[-1])
    assert where.startswith(str(venv)), where
    assert faces >= 1 and dim > 0
