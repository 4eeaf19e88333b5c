"""The README's "Coming from the original design" commands, run as written on a
small tree laid out like the original project (data_recognition/raw, a
yolov5s-face.pt, weights/models/magface_iresnet50_MS1MV2_dp.pth).

Stand-ins, since the original's weights are not in ../shared: the detector
checkpoint holds the real yolov5n-0.5-face weights (read out of ../shared's
export into the original's classes, pickled the original's way), the MagFace
checkpoint a random iresnet18 in MagFace's layout. The names it gives are
therefore meaningless; the commands, files and outputs are what is tested.
The webcam line runs on the Hamilton clip (first 10 frames) without --view."""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED, need_facerec

MAKE = os.path.join(os.path.dirname(__file__), "original_yolov5face", "make_checkpoint.py")


def readme_migration_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index("## Coming from the original design"):]
    block = re.search(r"runs it on a small tree:\n```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("facerec ")]


def test_readme_migration_commands_run(tmp_path):
    binary = need_facerec()
    celeb = os.path.join(SHARED, "data", "celeb5")
    clip = os.path.join(SHARED, "data", "video", "short_hamilton_clip.mp4")
    yolo = os.path.join(SHARED, "models", "yolov5n-0.5-face.onnx")
    for p in (celeb, clip, yolo):
        if not os.path.exists(p):
            pytest.skip(f"!!! {p} ABSENT: set FACEREC_SHARED; this migration test is SKIPPED !!!")
    commands = readme_migration_commands()
    assert len(commands) == 6, commands

    orig = tmp_path / "face-recognition"
    for person in ("Ben Afflek", "Madonna"):
        d = orig / "data_recognition" / "raw" / person
        d.mkdir(parents=True)
        for name in sorted(os.listdir(os.path.join(celeb, "train", person)))[:2]:
            os.symlink(os.path.join(celeb, "train", person, name), d / name)
    os.symlink(os.path.join(celeb, "val", "madonna", sorted(os.listdir(os.path.join(celeb, "val", "madonna")))[0]),
               orig / "test.jpg")
    r = subprocess.run([sys.executable, MAKE, "n-0.5", str(orig / "yolov5s-face.pt"), "--half",
                        "--weights-from-onnx", yolo], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from test_import import magface_layout_checkpoint
    (orig / "weights" / "models").mkdir(parents=True)
    magface_layout_checkpoint(str(orig / "weights" / "models" / "magface_iresnet50_MS1MV2_dp.pth"))
    env = dict(os.environ, FACEREC_CACHE=str(tmp_path / "cache"))
    env.pop("FACEREC_MANIFEST", None)

    outputs = []
    for line in commands:
        args = shlex.split(line.replace('"$T"', "0.3"))[1:]
        if args[0] == "watch":  # no camera or display here
            args = [a for a in args if a != "--view"]
            args[args.index("--source") + 1] = clip
            args += ["--max-frames", "10", "--json"]
        r = subprocess.run([binary, *args], cwd=orig, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stderr}"
        outputs.append(r.stdout)

    assert "imported yolov5s_face (detector, yolov5face)" in outputs[0]
    assert "imported magface_r50 (embedder, arcface)" in outputs[1]
    local = json.load(open(tmp_path / "cache" / "manifest.local.json"))
    assert sorted(m["id"] for m in local["models"]) == ["magface_r50", "yolov5s_face"]
    aligned = orig / "data_recognition" / "aligned"
    assert sorted(os.listdir(aligned)) == ["Ben Afflek", "Madonna"]
    assert all(len(os.listdir(aligned / p)) >= 1 for p in os.listdir(aligned))
    assert (orig / "gallery.db").exists()
    result = json.loads(outputs[4].splitlines()[0])
    assert result["image"].endswith("test.jpg") and len(result["faces"]) >= 1
    assert {c["identity"] for c in result["faces"][0]["candidates"]} <= {"Ben Afflek", "Madonna"}
    summary = json.loads(outputs[5].splitlines()[-1])
    assert summary["event"] == "summary" and summary["frames"] == 10 and summary["faces_per_frame"] > 0
