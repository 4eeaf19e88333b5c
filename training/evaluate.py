"""Verification metrics on embeddings: all-pairs ROC AUC on held-out people."""
import numpy as np
import torch


@torch.no_grad()
def embed(backbone, images, batch_size=64, device="cpu"):
    """images: N x 3 x S x S normalised tensor -> (N x D raw features) as numpy."""
    backbone.eval()
    out = [backbone(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def roc_auc(scores, same):
    """Probability that a random same-person pair outscores a random different-person
    pair (ties count half): the Mann-Whitney form of the ROC AUC."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    # Average ranks over ties.
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    n_pos, n_neg = same.sum(), (~same).sum()
    return (ranks[same].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def all_pairs_auc(features, labels):
    """Cosine similarity of every unordered pair; AUC of same vs different person."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    sim = f @ f.T
    labels = np.asarray(labels)
    iu = np.triu_indices(len(labels), k=1)
    return roc_auc(sim[iu], labels[iu[0]] == labels[iu[1]])
