"""Training throughput (images/s) of backbone + MagFace head + SGD step.

Synthetic inputs (random N x 3 x S x S, random labels), so it measures the
network and the loss, not decoding; the real trainer's images/s is in its log.

  /usr/bin/python3 -m training.bench_throughput --backbone iresnet50 --batch-size 128 --device cuda
"""
import argparse
import json
import time

import torch

from training.backbones import BACKBONES, build_backbone
from training.magface import build_head


def measure(backbone_name, batch_size, input_size, device, steps, warmup, classes, amp=False):
    backbone = build_backbone(backbone_name, input_size=input_size).to(device).train()
    head, loss_fn = build_head("magface", 512, classes)
    head = head.to(device)
    opt = torch.optim.SGD(list(backbone.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9,
                          weight_decay=5e-4)
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    y = torch.randint(0, classes, (batch_size,), device=device)
    scaler = torch.cuda.amp.GradScaler(enabled=amp)

    def step():
        with torch.autocast(device_type="cuda", enabled=amp):
            feats = backbone(x)
        logits, x_norm = head(feats.float())
        loss, _, _ = loss_fn(logits, y, x_norm)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {"backbone": backbone_name, "batch": batch_size, "input": input_size, "device": device, "amp": amp,
            "steps": steps, "seconds": round(dt, 3), "images_per_s": round(batch_size * steps / dt, 1),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", nargs="+", default=["iresnet50"], choices=BACKBONES)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--classes", type=int, default=10000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="CUDA mixed precision for the backbone")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    for name in a.backbone:
        print(json.dumps(measure(name, a.batch_size, a.input_size, a.device, a.steps, a.warmup, a.classes, a.amp)),
              flush=True)


if __name__ == "__main__":
    main()
