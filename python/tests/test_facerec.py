"""`import facerec` (python/src/module.cc) against the CLI, on real photos.

Run: /usr/bin/python3 -m pytest -q python/tests (scripts/test.sh does).
Needs build/python/facerec (the facerec_python target), build/facerec, the
default models (scripts/setup.sh) and ../shared; skips loudly without them.
"""
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pysupport import BIN, BUILD, CELEB, loud_skip

try:
    import facerec
except ImportError as e:  # the module was not built (no pybind11)
    loud_skip(f"facerec Python module not importable from {BUILD / 'python'} ({e})")
if not BIN.exists() or not CELEB.is_dir():
    loud_skip(f"{BIN} or {CELEB} is ABSENT")

TRAIN = CELEB / "train"
VAL = CELEB / "val"
ENROL_PHOTOS = 4  # per person: enough for a stable template, cheap on 2 cores


def train_photos(person, n=ENROL_PHOTOS):
    return sorted((TRAIN / person).iterdir())[:n]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """Elton John enrolled by the CLI, Madonna by Python: one gallery both read."""
    d = tmp_path_factory.mktemp("gallery")
    db = d / "g.db"
    tree = d / "people" / "Elton John"
    tree.mkdir(parents=True)
    for p in train_photos("Elton John"):
        (tree / p.name).symlink_to(p)
    subprocess.run([str(BIN), "enroll", str(d / "people"), "--db", str(db), "--threads", "1"], check=True,
                   capture_output=True, text=True, timeout=600)
    rec = facerec.Recognizer(str(db), threads=1)
    report = rec.enroll("Madonna", [str(p) for p in train_photos("Madonna")])
    assert report.added == ENROL_PHOTOS, report.items
    return db


@pytest.fixture(scope="module")
def rec(gallery):
    return facerec.Recognizer(str(gallery), threads=1, gallery="must_exist")


PROBES = [VAL / "elton_john" / "1.jpg", VAL / "madonna" / "2.jpg", VAL / "mindy_kaling" / "1.jpg"]


def test_results_equal_the_cli(rec, gallery):
    out = subprocess.run([str(BIN), "identify", "--json", "--db", str(gallery), "--threads", "1",
                          *map(str, PROBES)], check=True, capture_output=True, text=True, timeout=600).stdout
    cli = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(cli) == len(PROBES)
    named = set()
    for probe, c in zip(PROBES, cli):
        for image in (str(probe), facerec.load_image(probe)):  # a path, and the BGR array
            r = rec.identify(image)
            assert (r.width, r.height) == (c["width"], c["height"])
            assert r.threshold == pytest.approx(c["decision"]["threshold"], abs=1e-6)
            assert len(r.faces) == len(c["faces"]) >= 1
            for f, cf in zip(r.faces, c["faces"]):
                assert f.identity == cf["identity"]
                assert f.reason == cf["reason"]
                assert f.similarity == pytest.approx(cf["similarity"], abs=1e-5)
                assert f.score == pytest.approx(cf["score"], abs=1e-5)
                assert f.quality == pytest.approx(cf["quality"], abs=1e-5)
                assert np.allclose(f.box, cf["box"], atol=1e-3)
                assert np.allclose(f.landmarks, np.array(cf["landmarks"]), atol=1e-3)
                assert [(x.identity, round(x.similarity, 5)) for x in f.candidates] == \
                    [(x["identity"], round(x["similarity"], 5)) for x in cf["candidates"]]
                if f.identity:
                    named.add(f.identity)
            j = json.loads(r.to_json())  # the CLI's own serialiser, from Python's result
            assert j.keys() == c.keys() and j["decision"] == c["decision"]
            assert [x["identity"] for x in j["faces"]] == [x["identity"] for x in c["faces"]]
    # The measurement behind the test: the two enrolled people are named on
    # their val photos, whichever layer enrolled them.
    assert named == {"Elton John", "Madonna"}


def test_face_fields_types_and_embedding(rec):
    img = facerec.load_image(PROBES[0])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    f = rec.identify(img).faces[0]
    assert isinstance(f.box, tuple) and len(f.box) == 4
    assert f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float32
    e = f.embedding
    assert e.dtype == np.float32 and e.shape == (rec.embedding_dim,)
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-4)
    # embed(): the largest face, the same embedding identify() computed.
    g = rec.embed(img)
    assert float(np.dot(g.embedding, e)) == pytest.approx(1.0, abs=1e-4)
    assert f.candidates[0].identity == f.identity and isinstance(f.candidates[0], facerec.Candidate)
    # A view with negative strides (RGB -> BGR flip of a flip) is accepted and copied.
    same = rec.identify(img[:, :, ::-1][:, :, ::-1]).faces[0]
    assert same.similarity == pytest.approx(f.similarity, abs=1e-6)
    # A crop (rows longer than the view) gives what a contiguous copy of it gives.
    crop = img[8:, 8:]
    assert not crop.flags.c_contiguous
    a, b = rec.embed(crop).embedding, rec.embed(np.ascontiguousarray(crop)).embedding
    assert float(np.dot(a, b)) == pytest.approx(1.0, abs=1e-5)


def test_search_embeddings(rec):
    faces = [rec.identify(str(p)).faces[0] for p in PROBES[:2]]
    lists = rec.search(np.stack([f.embedding for f in faces]), top_k=2)
    for f, cands in zip(faces, lists):
        assert [(c.identity, round(c.similarity, 5)) for c in cands] == \
            [(c.identity, round(c.similarity, 5)) for c in f.candidates[:2]]
    assert len(rec.search(faces[0].embedding)) == 1
    with pytest.raises(facerec.InvalidArgumentError):
        rec.search(np.zeros((1, 7), np.float32))  # not the embedder's dimension
    with pytest.raises(facerec.InvalidArgumentError):
        rec.search(faces[0].embedding.astype(np.float64))


def test_verify(rec):
    a, b = VAL / "elton_john" / "1.jpg", VAL / "elton_john" / "2.jpg"
    v = rec.verify(str(a), str(b))
    assert v.same and v.similarity >= v.threshold
    w = rec.verify(str(a), str(VAL / "madonna" / "1.jpg"))
    assert not w.same


def test_gallery_enrol_list_rename_remove(gallery, tmp_path):
    rec = facerec.Recognizer(str(tmp_path / "own.db"), threads=1)
    assert rec.people() == []
    img = facerec.load_image(train_photos("Mindy Kaling", 1)[0])
    r = rec.enroll("Mindy", [img, train_photos("Mindy Kaling", 2)[1].read_bytes()])
    assert (r.added, r.skipped) == (2, 0) and [i.state for i in r.items] == ["added", "added"]
    assert rec.enroll("Mindy", img).duplicates == 1  # the same array again: the same PNG content
    assert [(p.name, p.templates) for p in rec.people()] == [("Mindy", 2)]
    rec.rename("Mindy", "Mindy Kaling")
    assert [p.name for p in rec.people()] == ["Mindy Kaling"]
    assert rec.identify(str(VAL / "mindy_kaling" / "1.jpg")).faces[0].identity == "Mindy Kaling"
    with pytest.raises(facerec.NotFoundError) as e:
        rec.remove("Nobody")
    assert e.value.code == "not_found"
    rec.enroll("Other", [str(train_photos("Madonna", 1)[0])])
    with pytest.raises(facerec.AlreadyExistsError):
        rec.rename("Other", "Mindy Kaling")
    rec.remove("Mindy Kaling")
    assert [p.name for p in rec.people()] == ["Other"]
    with pytest.raises(facerec.InvalidArgumentError):
        rec.enroll("", [img])


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64, 3), np.float32),   # wrong dtype: never cast
    np.zeros((64, 64), np.uint8),        # greyscale shape
    np.zeros((64, 64, 4), np.uint8),     # BGRA
    np.zeros((0, 64, 3), np.uint8),      # empty
    [[1, 2, 3]],                         # not an array
])
def test_bad_arrays_raise_invalid_argument(rec, bad):
    with pytest.raises(facerec.InvalidArgumentError) as e:
        rec.identify(bad)
    assert isinstance(e.value, facerec.Error) and isinstance(e.value, ValueError)
    assert e.value.code == "invalid_argument" and e.value.message


def test_corrupt_and_missing_files(rec, tmp_path):
    good = (VAL / "elton_john" / "1.jpg").read_bytes()
    trunc = tmp_path / "truncated.jpg"
    trunc.write_bytes(good[: len(good) // 2])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image" * 10)
    for path in (trunc, junk):
        with pytest.raises(facerec.DecodeError) as e:
            rec.identify(str(path))
        assert e.value.code == "decode" and str(path) in e.value.message
    with pytest.raises(facerec.DecodeError):
        rec.identify(good[:100])  # bytes too
    with pytest.raises(facerec.NotFoundError):
        rec.identify(tmp_path / "absent.jpg")
    before = rec.template_count
    r = rec.enroll("Corrupt", [str(trunc)])  # skipped, nothing written
    assert r.added == 0 and r.items[0].state == "skipped" and "decode" in r.items[0].error
    assert rec.template_count == before and "Corrupt" not in [p.name for p in rec.people()]


def test_no_face(rec):
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert len(rec.identify(blank)) == 0  # identify: no faces is an answer, not an error
    with pytest.raises(facerec.NoFaceError) as e:
        rec.embed(blank)
    assert e.value.code == "no_face" and e.value.code_value == facerec.NoFaceError.code_value
    with pytest.raises(facerec.NoFaceError):
        rec.verify(blank, str(PROBES[0]))
    r = rec.enroll("Blank", [blank])  # enrolment skips it, with the reason, and writes nothing
    assert r.added == 0 and r.items[0].state == "skipped" and "no face" in r.items[0].error
    assert "Blank" not in [p.name for p in rec.people()]


def test_two_threads_identify_at_once(rec):
    """Two threads identify the same photo at once, three times each, and get
    the serial answer every time."""
    img = facerec.load_image(PROBES[1])
    expected = [(f.identity, f.similarity) for f in rec.identify(img).faces]
    answers = {0: [], 1: []}
    errors = []
    start = threading.Barrier(2)

    def work(k):
        try:
            start.wait()
            for _ in range(3):
                answers[k].append([(f.identity, f.similarity) for f in rec.identify(img).faces])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors
    for k in (0, 1):
        assert answers[k] == [expected] * 3


def _python_progress_during(call):
    """How far a pure-Python counting thread gets while `call` runs, as a
    fraction of what it gets alone in the same time. Near 0 when the call
    holds the GIL (the counter can only move in the switch intervals around
    it), near 1 when it releases it and a core is free."""
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        c0, t0 = count[0], time.perf_counter()
        time.sleep(0.1)  # the GIL is free: the counter's own rate
        rate = (count[0] - c0) / (time.perf_counter() - t0)
        c0, t0 = count[0], time.perf_counter()
        call()
        took = time.perf_counter() - t0
        moved = count[0] - c0
    finally:
        stop.set()
        t.join()
    return moved / (rate * took), took


def test_the_gil_is_released_during_identify(rec):
    """A Python thread keeps running while identify() works; the same
    measurement of a call that holds the GIL (a backtracking regex, the
    negative control) shows it stopped, so the test can tell them apart."""
    import re
    img = facerec.load_image(PROBES[0])
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        released, took = _python_progress_during(lambda: [rec.identify(img) for _ in range(3)])
        held, held_took = _python_progress_during(lambda: re.match(r"(a+)+b", "a" * 22))
    finally:
        sys.setswitchinterval(old)
    print(f"\nPython progress during identify: {released:.2f} over {took * 1e3:.0f} ms; "
          f"during a GIL-holding regex: {held:.2f} over {held_took * 1e3:.0f} ms")
    assert took > 0.03 and held_took > 0.03  # long enough to tell
    assert held < 0.1, "the negative control did not stop the counter: the measurement is broken"
    assert released > 0.2, f"a Python thread barely ran during identify ({released:.2f}): is the GIL held?"
