"""Shared fixtures: where the data and the C++ CLI are, and one small AT&T training run.

Data comes from ../shared (or $FACEREC_SHARED); the CLI is build/facerec
(or $FACEREC_BIN). A test that needs either skips with a loud reason when it
is missing, never passes silently.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SHARED = os.environ.get("FACEREC_SHARED", os.path.join(ROOT, "..", "shared"))
ATT = os.path.join(SHARED, "data", "att")
FACEREC = os.environ.get("FACEREC_BIN", os.path.join(ROOT, "build", "facerec"))

# The AT&T run: 30 people train, the last 10 by name are held out for
# verification. AT&T here is 23x28 greyscale (not the 92x112 of the original
# release), so 32x32 input loses nothing; one thread, because on busy shared
# cores torch's second thread made each step ~3x slower.
ATT_INPUT = 32
ATT_HOLDOUT = 10
ATT_ARGS = ["--backbone", "iresnet_tiny", "--input-size", str(ATT_INPUT), "--epochs", "12", "--batch-size", "32",
            "--lr", "0.05", "--warmup-epochs", "1", "--lr-steps", "8,11", "--threads", "1",
            "--holdout", str(ATT_HOLDOUT), "--device", "cpu", "--seed", "0"]


def need_att():
    if not os.path.isdir(ATT):
        pytest.skip(f"!!! AT&T faces ABSENT at {ATT}: set FACEREC_SHARED; this real-data test is SKIPPED !!!")
    return ATT


def need_facerec():
    if not os.access(FACEREC, os.X_OK):
        pytest.skip(f"!!! {FACEREC} is ABSENT: build it (scripts/test.sh does) or set FACEREC_BIN; SKIPPED !!!")
    return FACEREC


def run_facerec(*args, env=None, with_stderr=False):
    r = subprocess.run([need_facerec(), *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"facerec {' '.join(args)} failed ({r.returncode}):\n{r.stderr}"
    return (r.stdout, r.stderr) if with_stderr else r.stdout


@pytest.fixture(scope="session")
def att_run(tmp_path_factory):
    """(run folder, per-epoch history) of the small AT&T training run."""
    from training import train
    data = need_att()
    out = str(tmp_path_factory.mktemp("att_run"))
    history = train.train(train.parse_args(["--data", data, "--out", out, *ATT_ARGS]))
    return out, history


@pytest.fixture(scope="session")
def att_heldout():
    """(N x 3 x S x S normalised tensor, labels, uint8 BGR S x S crops) of the held-out people."""
    import torch
    from training.data import FaceFolder
    data = need_att()
    names = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
    ds = FaceFolder(data, ATT_INPUT, flip=False, people=names[-ATT_HOLDOUT:])
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    return x, [label for _, label in ds.samples], ds.images
