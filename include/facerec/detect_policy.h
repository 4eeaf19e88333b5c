// Detection policies: how facerec shows a photo to a detector whose fixed view
// would lose a face. They wrap any Detector and change nothing in it.
//
//  - Aspect ratio (issue 11, fault 5). A detector whose manifest input is
//    "resize": "stretch" (fr_detect: 320x240) squeezes a 6000x1200 panorama
//    by 3.75x horizontally and loses a 650 px face. When the photo's aspect
//    ratio differs from the network input's by more than max_stretch, the
//    photo is letterboxed (padded to the input's aspect ratio) or tiled
//    (cut into windows of the input's aspect ratio). Detectors that letterbox
//    by themselves are never distorted and are left alone.
//  - Faces that fill the frame (fault 4). Detectors trained on WIDER rarely
//    saw a face filling the whole picture. When nothing is found, or a large
//    face touches the border, the photo is retried once on a black-padded,
//    downscaled copy; the faces found there are mapped back and merged.
//  - Small faces (issue 8). When the whole photo reaches the network at a
//    scale below tile_min_scale, overlapping tiles are also run, each seen at
//    a scale of at least tile_min_scale, and everything is merged by NMS.
//
// Every face comes back in original-image pixels: boxes clipped to the image,
// landmarks not clipped (as Detector::detect), sorted by score, after NMS at
// the detector's nms_threshold and its max_faces cap.
//
// Thread safety: detect_with_policy() is reentrant; it only calls the
// detector's const detect().
#pragma once

#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "facerec/detect.h"
#include "facerec/status.h"
#include "facerec/types.h"

namespace facerec {

enum class AspectPolicy {
  kStretch,    // as the manifest says: no change (the behaviour before the policy)
  kLetterbox,  // pad the photo (black, right and bottom) to the network input's aspect ratio
  kTile,       // windows of the input's aspect ratio along the long axis, 50% overlap;
               // a face longer than half a window can be cut in every window and lost
};

struct DetectPolicyOptions {
  // ---- aspect ratio (stretch-input detectors only) ----
  // kLetterbox (BENCHMARKS.md, "Detection policies (issues 8, 11)"). kTile
  // scored better WIDER AP with fr_detect (0.820/0.741/0.507 against
  // letterbox 0.798/0.702/0.458 and stretch 0.784/0.699/0.475), but it never
  // shows the whole photo: a face taller than a window (a portrait whose face
  // fills half the height) is cut in every window and lost, and celeb5 rank-1
  // fell from 100% to 88%. Letterbox keeps every face whole.
  AspectPolicy aspect = AspectPolicy::kLetterbox;
  // The largest stretch allowed: max(a/n, n/a) for a photo of aspect a
  // (width/height) and a network input of aspect n. 1 applies the policy to
  // every photo whose shape is not the input's.
  float max_stretch = 1.f;

  // ---- retry for faces that fill the frame ----
  bool border_retry = true;
  // Only faces at least this confident count as found, or as touching the
  // border (a detector run at a low threshold for a PR curve always finds
  // something).
  float retry_trigger_score = 0.5f;
  // A face touching the border triggers the retry only when its box is at
  // least this fraction of the photo's shorter side: a small face cut by the
  // edge is not helped by padding.
  float retry_min_fill = 0.3f;
  // Each side is padded by this fraction of the photo's width (left, right)
  // or height (top, bottom): 0.5 doubles each side, so a face that filled the
  // frame fills half of it.
  float retry_pad = 0.5f;
  // The padded copy is downscaled so that its longer side is at most this
  // many pixels (0: twice the network input's longer side). Only a cost
  // bound: the detector resizes to its input anyway.
  int retry_max_side = 0;

  // ---- tiles for small faces ----
  // 0: off. Otherwise, when the whole photo reaches the network at a scale
  // below this (network pixels per photo pixel), tiles of
  // input_size / tile_min_scale photo pixels are also run.
  float tile_min_scale = 0.f;
  float tile_overlap = 0.25f;  // fraction of a tile shared with its neighbour
  int max_tiles = 16;          // more would be needed: the tiles grow (and the scale drops) until they fit
};

// The policy that measured best (BENCHMARKS.md, "Detection policies (issues
// 8, 11)"): letterbox any photo whose shape is not a stretch input's,
// retry frame-filling faces, no small-face tiles.
inline DetectPolicyOptions default_detect_policy() { return {}; }
// No policy at all: exactly Detector::detect.
DetectPolicyOptions no_detect_policy();

// Parses "none", "default", or a comma-separated list of key=value applied
// over the default: aspect=stretch|letterbox|tile, max-stretch=F, retry=0|1,
// retry-pad=F, retry-min-fill=F, retry-score=F, tile-scale=F,
// tile-overlap=F, max-tiles=N. kInvalidArgument names the bad key or value.
Result<DetectPolicyOptions> parse_detect_policy(const std::string& text);

// Faces in bgr (8-bit, 1, 3 or 4 channels, any size) found by detector under
// the policy. Errors are the detector's, or kInvalidArgument for options out
// of range (e.g. retry_pad < 0, tile_min_scale < 0, max_tiles < 1).
Result<std::vector<Face>> detect_with_policy(const Detector& detector, const cv::Mat& bgr,
                                             const DetectPolicyOptions& options);
// The same with this call's detection options (score, NMS, max faces)
// instead of the detector's creation options.
Result<std::vector<Face>> detect_with_policy(const Detector& detector, const cv::Mat& bgr,
                                             const DetectPolicyOptions& options, const DetectOptions& detect_options);

// ---- building blocks (tested on their own) ---------------------------------

// The network input size the policy plans for: the spec's input size, else
// the detector options' override, else 640x640.
cv::Size planned_input_size(const Detector& detector);
// How much a stretch fit of `image` into `input` distorts: max(a/n, n/a) >= 1.
float stretch_of(cv::Size image, cv::Size input);
// Pads bgr with black on the right or bottom to the aspect ratio of
// `aspect` (at least 1 pixel each way). view = image (scale 1, no offset).
Letterbox pad_to_aspect(const cv::Mat& bgr, cv::Size aspect, cv::Mat& out);
// Downscales bgr by `scale` (<= 1; 1 copies) then pads pad_x pixels left and
// right and pad_y top and bottom with black. view = image * scale + pad.
Letterbox pad_and_scale(const cv::Mat& bgr, double scale, int pad_x, int pad_y, cv::Mat& out);
// Overlapping windows of `tile` (clamped to the image) covering `image`,
// evenly spread so that neighbours share at least overlap * tile pixels;
// row-major. One window when the tile covers the image.
std::vector<cv::Rect> tile_grid(cv::Size image, cv::Size tile, float overlap);
// Maps faces from view coordinates (view = image * scale + pad) back to the
// image, without clipping.
void unmap_faces(std::vector<Face>& faces, const Letterbox& view);
// Clips boxes to the image and drops faces left with no area.
void clip_faces(std::vector<Face>& faces, cv::Size image);
// Whether box comes within margin pixels of an edge of region (box and
// region in the same coordinates).
bool touches_edge(const cv::Rect2f& box, const cv::Rect2f& region, float margin);

}  // namespace facerec
