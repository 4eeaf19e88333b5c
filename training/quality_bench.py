"""Does the feature magnitude order faces by quality? Degrade real faces, compare norms.

  /usr/bin/python3 -m training.quality_bench runs/att/checkpoint.pth --data ../shared/data/att --holdout 10

Every face is degraded at its source resolution (BGR uint8), then resized to
the model input exactly as in training. For each degradation it prints the
mean raw norm, its ratio to the clean faces' mean norm, and the share of faces
whose norm fell below their own clean norm (a paired comparison). Faces are
those of the held-out people (never seen in training) and, separately, of
the training people.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from training.data import list_image_folder, read_bgr, resize_bgr, to_tensor
from training.export_onnx import load_checkpoint_backbone


def _gauss_blur(img, sigma):
    r = max(1, int(round(3 * sigma)))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    t = torch.from_numpy(img).permute(2, 0, 1).float()[:, None]  # 3 x 1 x H x W
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return t[:, 0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _noise(img, sigma, rng):
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def _occlude(img, frac):
    """A mid-grey box over the central frac x frac of the face (eyes and nose)."""
    out = img.copy()
    h, w = img.shape[:2]
    bh, bw = int(h * frac), int(w * frac)
    y0, x0 = (h - bh) // 2, (w - bw) // 2
    out[y0:y0 + bh, x0:x0 + bw] = 128
    return out


def _downscale(img, factor):
    h, w = img.shape[:2]
    t = torch.from_numpy(img).permute(2, 0, 1).float()[None]
    small = F.interpolate(t, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="area")
    back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return back[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def degradations(rng):
    return {
        "clean": lambda im: im,
        "blur_sigma1": lambda im: _gauss_blur(im, 1.0),
        "blur_sigma2": lambda im: _gauss_blur(im, 2.0),
        "noise_sigma15": lambda im: _noise(im, 15, rng),
        "noise_sigma40": lambda im: _noise(im, 40, rng),
        "occlude_40pct": lambda im: _occlude(im, 0.4),
        "occlude_60pct": lambda im: _occlude(im, 0.6),
        "downscale_x0.5": lambda im: _downscale(im, 0.5),
        "downscale_x0.25": lambda im: _downscale(im, 0.25),
    }


@torch.no_grad()
def norms(backbone, images, size, norm):
    x = torch.stack([to_tensor(resize_bgr(im, size), norm) for im in images])
    return backbone(x).norm(dim=1).numpy()


def run(ckpt, data, holdout, seed=0, held_out_only=False):
    backbone, ck = load_checkpoint_backbone(ckpt)
    names = sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))
    groups = {"held_out": names[-holdout:] if holdout else [], "trained": names[:-holdout] if holdout else names}
    if held_out_only:
        groups["trained"] = []
    results = {}
    for group, people in groups.items():
        if not people:
            continue
        samples, _ = list_image_folder(data, people)
        images = [read_bgr(p) for p, _ in samples]
        rng = np.random.default_rng(seed)
        clean = None
        for name, fn in degradations(rng).items():
            n = norms(backbone, [fn(im) for im in images], ck["input_size"], ck["norm"])
            if clean is None:
                clean = n
            results[(group, name)] = {"faces": len(n), "mean_norm": float(n.mean()),
                                      "ratio_to_clean": float(n.mean() / clean.mean()),
                                      "share_below_own_clean": float((n < clean).mean())}
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--holdout", type=int, default=10, help="the last N people by name were held out of training")
    p.add_argument("--held-out-only", action="store_true", help="skip the training people")
    a = p.parse_args(argv)
    res = run(a.checkpoint, a.data, a.holdout, held_out_only=a.held_out_only)
    print("| faces | degradation | n | mean norm | / clean | share below own clean |")
    print("|---|---|---|---|---|---|")
    for (group, name), r in res.items():
        print(f"| {group} | {name} | {r['faces']} | {r['mean_norm']:.3f} | {r['ratio_to_clean']:.3f} | "
              f"{r['share_below_own_clean']:.2f} |")
    print(json.dumps({f"{g}/{n}": r for (g, n), r in res.items()}))


if __name__ == "__main__":
    main()
