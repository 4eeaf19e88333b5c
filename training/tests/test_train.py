"""A short CPU MagFace run on AT&T (30 people train, 10 held out)."""
import os

import torch

from conftest import ATT_ARGS, ATT_INPUT, need_att
from training import train
from training.backbones import build_backbone
from training.evaluate import all_pairs_auc, embed, roc_auc


def test_roc_auc_by_hand():
    # Pairs: same 0.9, 0.4; different 0.5, 0.1 -> 3 of 4 (same, different) orderings right.
    assert roc_auc([0.9, 0.4, 0.5, 0.1], [True, True, False, False]) == 0.75
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half


def test_loss_falls_and_heldout_auc_rises(att_run, att_heldout):
    out, history = att_run
    losses = [h["loss"] for h in history]
    print("loss per epoch:", [round(v, 2) for v in losses])
    assert losses[-1] < 0.3 * losses[0], losses
    assert history[-1]["acc"] > 0.9
    x, labels, _ = att_heldout
    # The same seed and architecture, untrained, is the baseline.
    torch.manual_seed(0)
    untrained = build_backbone("iresnet_tiny", input_size=ATT_INPUT)
    auc0 = all_pairs_auc(embed(untrained, x), labels)
    trained = build_backbone("iresnet_tiny", input_size=ATT_INPUT)
    trained.load_state_dict(torch.load(os.path.join(out, "checkpoint.pth"))["state_dict"])
    auc1 = all_pairs_auc(embed(trained, x), labels)
    print(f"held-out all-pairs AUC: untrained {auc0:.4f}, trained {auc1:.4f}")
    assert auc1 > auc0 + 0.04 and auc1 > 0.95, (auc0, auc1)


def test_resume_continues_from_the_checkpoint(tmp_path):
    data = need_att()
    args = ["--data", data, "--out", str(tmp_path), "--max-steps", "2", *ATT_ARGS]
    first = train.train(train.parse_args(args[:-0 or None] + ["--epochs", "1"]))
    assert [h["epoch"] for h in first] == [1]
    resumed = train.train(train.parse_args(args + ["--epochs", "2", "--resume"]))
    assert [h["epoch"] for h in resumed] == [1, 2]
    assert resumed[0] == first[0]  # history carried over, not recomputed
    log = open(os.path.join(tmp_path, "log.jsonl")).read().splitlines()
    assert len(log) == 2


def test_lfw_validation_skips_clearly_without_eval(tmp_path, capsys):
    fake = tmp_path / "facerec"
    fake.write_text("#!/bin/sh\nexit 109\n")
    fake.chmod(0o755)
    assert train.lfw_validate("unused.pth", str(tmp_path), "lfw", str(fake)) is None
    assert "has no 'eval' subcommand" in capsys.readouterr().err


def test_fine_tune_starts_from_the_given_backbone(att_run, tmp_path):
    out, _ = att_run
    init = os.path.join(out, "checkpoint.pth")
    # lr 0: one step must leave the loaded conv weights exactly as initialised
    # (BN running statistics do move in train mode, so they are not compared).
    args = ["--data", need_att(), "--out", str(tmp_path), *ATT_ARGS, "--epochs", "1", "--max-steps", "1",
            "--lr", "0", "--init", init, "--seed", "5"]
    train.train(train.parse_args(args))
    before = torch.load(init)["state_dict"]
    after = torch.load(os.path.join(tmp_path, "checkpoint.pth"))["state_dict"]
    convs = [k for k in before if "conv" in k and k.endswith("weight")]
    assert convs and all(torch.equal(before[k], after[k]) for k in convs)
