#!/usr/bin/python3
"""BENCHMARK-ONLY PyTorch models in the original design's style, timed in
PyTorch eager next to the same modules exported to ONNX and run through
facerec's engine (build/bench/model_speed), on the same input, in the same run.

Not training code and not used by the library: minimal re-definitions, random
weights (BatchNorm running statistics are randomised too, so activations stay
in a normal range), eval mode, torch.no_grad(), torch.set_num_threads(2).

Models (batch 1):
- iresnet50 / iresnet18: InsightFace arcface_torch's iresnet (IBasicBlock:
  BN-conv3x3-BN-PReLU-conv3x3(stride)-BN, 1x1 conv+BN downsample; stem conv3x3
  64 + BN + PReLU; BN2d - dropout - flatten - fc(512*7*7 -> 512) - BN1d), layers
  [3,4,14,3] / [2,2,2,2], 112x112 RGB input, fp32 (arcface_torch trains with
  fp16 on GPU; on CPU inference is fp32).
- yolov5n-0.5-face: deepcam-cn/yolov5-face models/yolov5n-0.5.yaml (width 0.5,
  depth 1.0): StemBlock(16) - ShuffleV2 [64 s2, 3x64, 128 s2, 7x128, 256 s2,
  3x256] - PAN head with C3(64, no shortcut) - Detect (3 anchors x 16 =
  4 box + 1 obj + 10 landmarks + 1 class), SiLU activations, 640x640 input.
  Checked layer by layer against ../shared/models/yolov5n-0.5-face.onnx: same
  85 convolutions with the same weight shapes, strides and groups, and the same
  FLOPs (bench/onnx_flops.py). Differences: the shared export has BatchNorm
  folded into the convolutions (eager PyTorch keeps Conv + BN as separate ops;
  the export of this module folds them the same way), and its Detect head
  returns the raw (1,3,H,W,16) maps, as here (decoding happens in facerec's C++).

usage: /usr/bin/python3 bench/torch_original.py --out /tmp/eb_torch [--rounds 5] [--reps 5]
       [--model-speed build/bench/model_speed] [--with-manifest [--manifest-models id,id]] [--json out.json]
       [--extra-onnx NAME=PATH:INPUT.raw:1x3xHxW ...]   (e.g. the int8 QDQ of an export, same input)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn


# ---- iresnet (arcface_torch layout) -------------------------------------------------

def conv3x3(i, o, s=1):
    return nn.Conv2d(i, o, 3, s, 1, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    fc_scale = 7 * 7

    def __init__(self, layers, num_features=512):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0], 2)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)

    def _make_layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


def iresnet50():
    return IResNet([3, 4, 14, 3])


def iresnet18():
    return IResNet([2, 2, 2, 2])


# ---- yolov5n-0.5-face (deepcam-cn/yolov5-face) -----------------------------------------

# Conv, StemBlock, ShuffleV2Block, C3 (Bottleneck inside): facerec's own
# definitions of the original's blocks, the ones `facerec models import
# yolov5face` unpickles checkpoints into (training/yolov5face.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from training.yolov5face import C3, Conv, ShuffleV2Block, StemBlock  # noqa: E402


class YoloV5nFace05(nn.Module):
    """yolov5n-0.5.yaml with width_multiple 0.5 applied (make_divisible(c*0.5, 8))."""

    def __init__(self, na=3, no=16):
        super().__init__()
        self.na, self.no = na, no
        self.b0 = StemBlock(3, 16, 3, 2)                        # 0  P2/4
        self.b1 = ShuffleV2Block(16, 64, 2)                     # 1  P3/8
        self.b2 = nn.Sequential(*[ShuffleV2Block(64, 64, 1) for _ in range(3)])     # 2
        self.b3 = ShuffleV2Block(64, 128, 2)                    # 3  P4/16
        self.b4 = nn.Sequential(*[ShuffleV2Block(128, 128, 1) for _ in range(7)])   # 4
        self.b5 = ShuffleV2Block(128, 256, 2)                   # 5  P5/32
        self.b6 = nn.Sequential(*[ShuffleV2Block(256, 256, 1) for _ in range(3)])   # 6
        self.h7 = Conv(256, 64, 1, 1)                           # 7
        self.up = nn.Upsample(None, 2, "nearest")               # 8, 12
        self.h10 = C3(64 + 128, 64, 1, False)                   # 10
        self.h11 = Conv(64, 64, 1, 1)                           # 11
        self.h14 = C3(64 + 64, 64, 1, False)                    # 14 P3
        self.h15 = Conv(64, 64, 3, 2)                           # 15
        self.h17 = C3(64 + 64, 64, 1, False)                    # 17 P4
        self.h18 = Conv(64, 64, 3, 2)                           # 18
        self.h20 = C3(64 + 64, 64, 1, False)                    # 20 P5
        self.m = nn.ModuleList(nn.Conv2d(64, na * no, 1) for _ in range(3))  # 21 Detect

    def forward(self, x):
        x = self.b0(x)
        p3 = self.b2(self.b1(x))
        p4 = self.b4(self.b3(p3))
        x = self.b6(self.b5(p4))
        x7 = self.h7(x)
        x = self.h10(torch.cat((self.up(x7), p4), 1))
        x11 = self.h11(x)
        o3 = self.h14(torch.cat((self.up(x11), p3), 1))
        o4 = self.h17(torch.cat((self.h15(o3), x11), 1))
        o5 = self.h20(torch.cat((self.h18(o4), x7), 1))
        out = []
        for i, f in enumerate((o3, o4, o5)):
            y = self.m[i](f)
            bs, _, ny, nx = y.shape
            out.append(y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous())
        return tuple(out)


# ---- driver -------------------------------------------------------------------------

def randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def noise_input(w, h, mean, std, seed):
    """Seeded uniform noise over the pixel range 0..255, normalised as the model
    expects; the same tensor goes to both engines (raw float32 file for facerec).
    (Debian's python3 here has no image decoder; forward time does not depend on
    the content, and facerec flushes denormals.)"""
    canvas = np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)
    x = ((canvas - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    return np.ascontiguousarray(x), f"uniform noise 0..255, seed {seed}, (x - {mean}) / {std}"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("FACEREC_SHARED") or os.path.normpath(os.path.join(here, "..", "..", "shared"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/eb_torch")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", default="iresnet50,iresnet18,yolov5n-0.5-face")
    ap.add_argument("--model-speed", default=os.path.join(here, "..", "build", "bench", "model_speed"))
    ap.add_argument("--with-manifest", action="store_true", help="also time every manifest model in the same model_speed calls")
    ap.add_argument("--json", default=None)
    ap.add_argument("--manifest-models", default=None,
                    help="with --with-manifest: only these manifest ids (comma-separated) instead of all")
    ap.add_argument("--extra-onnx", action="append", default=[],
                    help="NAME=PATH:INPUT.raw:1x3xHxW timed by the same model_speed calls (e.g. an int8 export)")
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--check", action="store_true",
                    help="only check that facerec's engine, run on the export, gives PyTorch eager's outputs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.torch_threads)
    torch.manual_seed(0)

    builders = {
        "iresnet50": (iresnet50, 112, 127.5, 127.5),
        "iresnet18": (iresnet18, 112, 127.5, 127.5),
        "yolov5n-0.5-face": (YoloV5nFace05, 640, 0.0, 255.0),
    }
    nets = {}
    for name in a.models.split(","):
        ctor, size, mean, std = builders[name]
        model = randomise_bn(ctor(), 1).eval()
        x, src = noise_input(size, size, mean, std, 1)
        xt = torch.from_numpy(x)
        onnx_path = os.path.join(a.out, f"torch_{name}.onnx")
        raw_path = os.path.join(a.out, f"torch_{name}.input.raw")
        x.tofile(raw_path)
        with torch.no_grad():
            torch.onnx.export(model, xt, onnx_path, opset_version=12, input_names=["input"], do_constant_folding=True)
        nets[name] = {"model": model, "x": xt, "onnx": onnx_path, "raw": raw_path, "shape": list(x.shape), "input_from": src, "ms": []}
        print(f"{name}: exported {onnx_path}, input {x.shape} from {src}", flush=True)

    if a.check:
        worst = 0.0
        cmd = [a.model_speed, "--models", "none", "--rounds", "1", "--reps", "1", "--dump", a.out]
        for name, n in nets.items():
            cmd += ["--onnx", f"torch:{name}={n['onnx']}:{n['raw']}:{'x'.join(map(str, n['shape']))}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        for name, n in nets.items():
            with torch.no_grad():
                ys = n["model"](n["x"])
            ys = ys if isinstance(ys, tuple) else (ys,)
            for k, y in enumerate(ys):
                got = np.fromfile(os.path.join(a.out, f"torch_{name}.out{k}.raw"), np.float32)
                ref = y.numpy().ravel()
                err = float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-12))
                worst = max(worst, err)
                print(f"{name} output {k} {tuple(y.shape)}: max |facerec - eager| / max |eager| = {err:.2e}")
        print(f"worst relative difference {worst:.2e}")
        return

    cpp = []
    gemm = []
    for r in range(a.rounds):
        with torch.no_grad():
            for name, n in nets.items():
                n["model"](n["x"])  # warm (first round also allocates)
                for _ in range(a.reps):
                    t0 = time.perf_counter()
                    n["model"](n["x"])
                    n["ms"].append((time.perf_counter() - t0) * 1e3)
        out_json = os.path.join(a.out, f"model_speed_round{r}.json")
        manifest_models = (a.manifest_models or "all") if a.with_manifest else "none"
        cmd = [a.model_speed, "--models", manifest_models, "--rounds", "1", "--reps", str(a.reps),
               "--json", out_json]
        for name, n in nets.items():
            cmd += ["--onnx", f"torch:{name}={n['onnx']}:{n['raw']}:{'x'.join(map(str, n['shape']))}"]
        for extra in a.extra_onnx:
            cmd += ["--onnx", extra]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out_json) as f:
            cpp.append(json.load(f))
        print(f"round {r + 1}/{a.rounds} done", flush=True)

    # Gather facerec's samples over the rounds.
    fr = {}
    for j in cpp:
        gemm += j["gemm"]["gflops"]
        for k, v in j["nets"].items():
            fr.setdefault(k, {"path": v["path"], "kind": v["kind"], "shape": v["shape"], "ms": []})["ms"] += v["ms"]
    res = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp default: spin, then sleep)"), "rounds": a.rounds, "reps": a.reps,
           "gemm_gflops": gemm, "loadavg_after": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "torch_eager": {}, "facerec": {}}
    for name, n in nets.items():
        res["torch_eager"][name] = {"ms": n["ms"], "median_ms": statistics.median(n["ms"]), "min_ms": min(n["ms"]),
                                    "onnx": n["onnx"], "shape": n["shape"], "input_from": n["input_from"]}
    for k, v in fr.items():
        v["median_ms"] = statistics.median(v["ms"])
        v["min_ms"] = min(v["ms"])
        res["facerec"][k] = v
    print(f"GEMM median {statistics.median(gemm):.1f} GFLOP/s, best {max(gemm):.1f}")
    for name in nets:
        t = res["torch_eager"][name]
        f = res["facerec"][f"torch:{name}"]
        print(f"{name:18s} torch eager {t['median_ms']:8.2f} ({t['min_ms']:.2f}) ms   facerec {f['median_ms']:8.2f} "
              f"({f['min_ms']:.2f}) ms   eager/facerec {t['median_ms'] / f['median_ms']:.2f}x")
    if a.json:
        with open(a.json, "w") as fo:
            json.dump(res, fo, indent=1)


if __name__ == "__main__":
    main()
