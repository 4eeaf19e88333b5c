#!/usr/bin/python3
"""WIDER FACE AP from `facerec eval detect --dump-scores`, by the official rules.

An independent oracle for src/eval/metrics.cc: a plain-Python transliteration
of the official evaluation (eval_tools/evaluation.m, as ported to Python in
the widely used evaluation.py: norm_score, image_eval, img_pr_info,
dataset_pr_info, voc_ap), with no numpy, so it runs on any python3. It reads
the dump's ground truth, difficulty keep lists and raw detections, and prints
{"ap_easy": .., "ap_medium": .., "ap_hard": ..} as JSON.

    python3 tools/wider_official_ap.py dets.jsonl

The one departure: where nothing is proposed at a threshold the official
Python divides 0 by 0 (NaN) and MATLAB's max() then skips it in the
envelope; here that precision is 0, which gives the same envelope.
"""
import json
import sys


def overlap(gt, det):
    """IoU of x1,y1,x2,y2 boxes with inclusive pixels (VOC's boxoverlap)."""
    iw = min(gt[2], det[2]) - max(gt[0], det[0]) + 1
    if iw <= 0:
        return 0.0
    ih = min(gt[3], det[3]) - max(gt[1], det[1]) + 1
    if ih <= 0:
        return 0.0
    ua = (det[2] - det[0] + 1) * (det[3] - det[1] + 1) + (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1) - iw * ih
    return iw * ih / ua


def main(path, thresh_num=1000, iou_thresh=0.5):
    images = [json.loads(line) for line in open(path) if line.strip()]
    # norm_score: min-max over every detection, starting from max 0, min 1.
    hi, lo = 0.0, 1.0
    for im in images:
        for d in im["detections"]:
            hi, lo = max(hi, d[4]), min(lo, d[4])
    for im in images:
        for d in im["detections"]:
            d[4] = (d[4] - lo) / (hi - lo)
        # A prediction file lists detections best first.
        im["detections"].sort(key=lambda d: -d[4])
    aps = []
    for subset in range(3):  # easy, medium, hard
        pr_curve = [[0.0, 0.0] for _ in range(thresh_num)]
        count_face = 0
        for im in images:
            keep = im["keep"][subset]
            count_face += sum(keep)
            gt = [[g[0], g[1], g[0] + g[2], g[1] + g[3]] for g in im["gt"]]
            preds = im["detections"]
            if not gt or not preds:
                continue
            # image_eval
            recall_list = [0] * len(gt)
            proposal_list = [1] * len(preds)
            pred_recall = [0] * len(preds)
            for h, p in enumerate(preds):
                box = [p[0], p[1], p[0] + p[2], p[1] + p[3]]
                ov = [overlap(g, box) for g in gt]
                max_overlap = max(ov)
                max_idx = ov.index(max_overlap)
                if max_overlap >= iou_thresh:
                    if keep[max_idx] == 0:
                        recall_list[max_idx] = -1
                        proposal_list[h] = -1
                    elif recall_list[max_idx] == 0:
                        recall_list[max_idx] = 1
                pred_recall[h] = sum(1 for r in recall_list if r == 1)
            # img_pr_info
            for t in range(thresh_num):
                thresh = 1 - (t + 1) / thresh_num
                above = [i for i, p in enumerate(preds) if p[4] >= thresh]
                if not above:
                    continue
                r = above[-1]
                pr_curve[t][0] += sum(1 for x in proposal_list[: r + 1] if x == 1)
                pr_curve[t][1] += pred_recall[r]
        # dataset_pr_info and voc_ap
        precision = [(p[1] / p[0]) if p[0] else 0.0 for p in pr_curve]
        recall = [p[1] / count_face for p in pr_curve]
        mrec = [0.0] + recall + [1.0]
        mpre = [0.0] + precision + [0.0]
        for i in range(len(mpre) - 1, 0, -1):
            mpre[i - 1] = max(mpre[i - 1], mpre[i])
        aps.append(sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i]))
    print(json.dumps({"ap_easy": aps[0], "ap_medium": aps[1], "ap_hard": aps[2]}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: wider_official_ap.py DUMP.jsonl  (from facerec eval detect --dump-scores)")
    main(sys.argv[1])
