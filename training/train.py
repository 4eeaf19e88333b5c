"""Train or fine-tune a face embedder with MagFace (or ArcFace) on an image folder.

  /usr/bin/python3 -m training.train --data aligned/ --backbone iresnet50 --epochs 20 --out runs/r50

Data: a folder per person of aligned crops (`facerec align` output). Each
epoch logs loss, the identity loss, the g(a) regulariser, training accuracy
(argmax of the plain cosine logits) and the mean feature norm, to stdout and to
<out>/log.jsonl. <out>/checkpoint.pth is written after every epoch (atomically:
an interrupted run leaves the previous one) and --resume continues from it.

Fine-tuning: --init <checkpoint.pth> loads a backbone (ours, or a MagFace
checkpoint via import_magface.load_magface_backbone) and trains a fresh head.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

from training.backbones import BACKBONES, build_backbone
from training.data import DEFAULT_NORM, FaceFolder
from training.magface import build_head


def pick_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available to this torch")
    return name


def save_atomic(obj, path):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".part")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def facerec_has_eval(binary):
    if not binary or not os.path.exists(binary):
        return False
    r = subprocess.run([binary, "eval", "lfw", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def lfw_validate(ckpt_path, out_dir, lfw_dir, binary):
    """Exports the checkpoint and runs `facerec eval` on LFW pairs. Returns its
    stdout, or None (with a message) when this build of facerec has no eval."""
    if not facerec_has_eval(binary):
        print(f"lfw-validate: SKIPPED: {binary} has no 'eval' subcommand (not built, or not merged yet)",
              file=sys.stderr, flush=True)
        return None
    from training.export_onnx import export_checkpoint
    onnx_path = os.path.join(out_dir, "validate.onnx")
    manifest = os.path.join(out_dir, "validate_manifest.json")
    # Through a manifest entry, not family:path, so eval feeds the network our
    # channel order and normalisation (the manifest starts as a copy of the
    # repository's, so the default detector stays available).
    export_checkpoint(ckpt_path, onnx_path, model_id="validate", append_to=manifest)
    cmd = [binary, "eval", "lfw", "--root", lfw_dir, "--pairs", os.path.join(lfw_dir, "pairs.txt"),
           "--manifest", manifest, "--embedder", "validate", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"lfw-validate: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}", file=sys.stderr)
        return None
    print("lfw-validate:", r.stdout.strip(), flush=True)
    return r.stdout


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder per person of aligned face crops")
    p.add_argument("--backbone", default="iresnet50", choices=BACKBONES)
    p.add_argument("--input-size", type=int, default=112, help="square input in pixels, a multiple of 16")
    p.add_argument("--embedding-size", type=int, default=512)
    p.add_argument("--margin", default="magface", choices=["magface", "arcface"])
    p.add_argument("--no-easy-margin", dest="easy_margin", action="store_false")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--lr-steps", default="", help="comma-separated epochs at which the LR is multiplied by --lr-gamma")
    p.add_argument("--lr-gamma", type=float, default=0.1)
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="linear LR warm-up; large-scale s = 64 logits diverge easily at the first steps")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: all cores)")
    p.add_argument("--holdout", type=int, default=0, help="leave the last N people (by name) out of training")
    p.add_argument("--no-flip", dest="flip", action="store_false")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pth")
    p.add_argument("--init", help="fine-tune: start the backbone from this checkpoint (ours or MagFace's)")
    p.add_argument("--out", required=True, help="run folder: checkpoint.pth, log.jsonl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lfw-validate", metavar="LFW_DIR", help="after each epoch, run `facerec eval` on LFW pairs")
    p.add_argument("--facerec", default=os.path.join(os.path.dirname(__file__), "..", "build", "facerec"),
                   help="the facerec CLI used by --lfw-validate")
    p.add_argument("--max-steps", type=int, default=0, help="stop each epoch after N steps (throughput runs)")
    return p.parse_args(argv)


def train(args):
    """Runs training; returns the per-epoch log records."""
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "checkpoint.pth")

    people = None
    if args.holdout:
        names = sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
        people = names[:-args.holdout]
    ds = FaceFolder(args.data, args.input_size, DEFAULT_NORM, flip=args.flip, people=people)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, drop_last=len(ds) > args.batch_size)

    backbone = build_backbone(args.backbone, args.embedding_size, args.input_size).to(device)
    head, criterion = build_head(args.margin, args.embedding_size, len(ds.classes), args.easy_margin)
    head = head.to(device)
    if args.init:
        from training.import_magface import load_any_backbone
        sd = load_any_backbone(args.init)
        missing, unexpected = backbone.load_state_dict(sd, strict=False)
        print(f"init from {args.init}: {len(sd)} tensors, missing {len(missing)}, unexpected {len(unexpected)}")
    params = [p for p in list(backbone.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    steps = [int(s) for s in args.lr_steps.split(",") if s.strip()]

    def lr_at(epoch, it, n_it):
        lr = args.lr * args.lr_gamma ** sum(epoch >= s for s in steps)
        if epoch < args.warmup_epochs:
            lr *= (epoch * n_it + it + 1) / (args.warmup_epochs * n_it)
        return lr

    start_epoch, history = 0, []
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        backbone.load_state_dict(ck["state_dict"])
        head.load_state_dict(ck["head"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, history = ck["epoch"], ck.get("history", [])
        print(f"resumed from {ckpt_path} at epoch {start_epoch}", flush=True)

    log = open(os.path.join(args.out, "log.jsonl"), "a")
    for epoch in range(start_epoch, args.epochs):
        backbone.train()
        head.train()
        t0 = time.time()
        tot = {"loss": 0.0, "loss_id": 0.0, "loss_g": 0.0, "correct": 0, "norm": 0.0, "n": 0}
        n_it = len(loader) if not args.max_steps else min(len(loader), args.max_steps)
        for it, (x, y) in enumerate(loader):
            if args.max_steps and it >= args.max_steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch, it, n_it)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            feats = backbone(x)
            logits, x_norm = head(feats)
            loss, loss_id, loss_g = criterion(logits, y, x_norm)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = len(y)
            tot["n"] += b
            tot["loss"] += loss.item() * b
            tot["loss_id"] += loss_id.item() * b
            tot["loss_g"] += loss_g.item() * b
            tot["correct"] += (logits[0].argmax(1) == y).sum().item()
            # The raw norm, not the clamped one MagLinear uses.
            tot["norm"] += feats.detach().norm(dim=1).sum().item()
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.time() - t0
        n = max(tot["n"], 1)
        rec = {"epoch": epoch + 1, "loss": tot["loss"] / n, "loss_id": tot["loss_id"] / n, "loss_g": tot["loss_g"] / n,
               "acc": tot["correct"] / n, "mean_norm": tot["norm"] / n, "lr": opt.param_groups[0]["lr"],
               "images": tot["n"], "seconds": dt, "images_per_s": tot["n"] / dt, "device": device}
        history.append(rec)
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n")
        log.flush()
        save_atomic({"epoch": epoch + 1, "backbone": args.backbone, "input_size": args.input_size,
                     "embedding_size": args.embedding_size, "norm": DEFAULT_NORM, "margin": args.margin,
                     "classes": ds.classes, "state_dict": backbone.state_dict(), "head": head.state_dict(),
                     "optimizer": opt.state_dict(), "history": history, "args": vars(args)}, ckpt_path)
        if args.lfw_validate:
            lfw_validate(ckpt_path, args.out, args.lfw_validate, args.facerec)
    log.close()
    return history


def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    main()
