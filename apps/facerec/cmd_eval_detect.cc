// facerec eval detect: WIDER FACE average precision
// (facerec/eval_detection.h); prints the summary or JSON, the
// precision/recall plot and the detections dump.
#include <fstream>
#include <iostream>

#include "cmd_eval.h"
#include "facerec/eval_detection.h"

using nlohmann::json;

namespace facerec::cli::evalcli {
namespace {

struct DetectEvalArgs {
  CommonOptions o;
  EvalOutput out;
  std::string images, gt, mat_dir;
  int max_faces = 750;  // see eval::WiderDetectionOptions
};

const char* kSubsetNames[3] = {"easy", "medium", "hard"};

Status write_dump(const std::string& file, const std::vector<eval::WiderGtImage>& gt, const eval::WiderDetectionResult& r) {
  std::ofstream d(file);
  for (size_t i = 0; i < gt.size(); ++i) {
    json boxes = json::array(), dets = json::array();
    for (const auto& b : gt[i].boxes) boxes.push_back({b.x, b.y, b.width, b.height});
    for (const auto& x : r.detections[i]) dets.push_back({x.box.x, x.box.y, x.box.width, x.box.height, x.score});
    d << json({{"image", gt[i].path}, {"gt", boxes}, {"keep", gt[i].keep}, {"detections", dets}}).dump() << "\n";
  }
  if (!d) return Status(ErrorCode::kIo, "cannot write " + file);
  return Status::Ok();
}

Status write_pr_plot(const std::string& file, const Context& ctx, size_t images, const eval::WiderDetectionResult& r) {
  eval::PlotSpec spec;
  spec.title = "WIDER FACE precision/recall (" + std::to_string(images) + " images, " + ctx.analyzer->detector().spec().id + ")";
  spec.x_label = "recall";
  spec.y_label = "precision";
  for (int s = 0; s < 3; ++s) {
    const auto& c = r.curves[static_cast<size_t>(s)];
    spec.series.push_back({std::string(kSubsetNames[s]) + "  AP " + fixed(c.ap, 3), c.recall, c.precision, eval::plot_colour(s)});
  }
  return eval::write_plot(spec, file);
}

int run_detect_eval(DetectEvalArgs a) {
  const auto t0 = std::chrono::steady_clock::now();
  auto gt = eval::read_wider_ground_truth(a.gt, a.mat_dir);
  if (!gt.ok()) return fail("detect", gt.status());
  if (!a.o.score_threshold) a.o.score_threshold = eval::kDetectEvalScore;
  auto ctx = make_context(a.o);
  if (!ctx.ok()) return fail("detect", ctx.status());
  eval::WiderDetectionOptions opt;
  opt.images_dir = a.images;
  opt.max_faces = a.max_faces;
  ProgressPrinter progress;
  auto r = eval::run_wider_detection(*ctx->analyzer, ctx->limits, *gt, opt, progress.hooks());
  progress.finish();
  if (!r.ok()) return fail("detect", r.status());
  if (!a.out.dump.empty())
    if (Status s = write_dump(a.out.dump, *gt, *r); !s.ok()) return fail("detect", s);
  if (!a.out.plot.empty())
    if (Status s = write_pr_plot(a.out.plot, *ctx, gt->size(), *r); !s.ok()) return fail("detect", s);

  const auto& c = r->curves;
  if (a.o.json) {
    json j = {{"ap_easy", c[0].ap},   {"ap_medium", c[1].ap}, {"ap_hard", c[2].ap},
              {"images", gt->size()}, {"faces", {{"easy", c[0].faces}, {"medium", c[1].faces}, {"hard", c[2].faces}}},
              {"detections", r->total_detections}, {"score_threshold", *a.o.score_threshold},
              {"iou", 0.5},           {"max_faces_per_image", a.max_faces},
              {"detector", ctx->analyzer->detector().spec().id},
              {"seconds", seconds_since(t0)}};
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("WIDER FACE AP over %zu images (official rules: IoU 0.5, faces outside each subset ignored)\n", gt->size());
  std::printf("  detector %s, keeping detections with confidence >= %.2f, at most %d per image (%zu in all)\n",
              ctx->analyzer->detector().spec().id.c_str(), *a.o.score_threshold, a.max_faces, r->total_detections);
  for (int s = 0; s < 3; ++s)
    std::printf("  %-6s  AP %s  (%lld faces)\n", kSubsetNames[s], fixed(c[static_cast<size_t>(s)].ap, 4).c_str(),
                static_cast<long long>(c[static_cast<size_t>(s)].faces));
  std::printf("  (%.1f s)\n", seconds_since(t0));
  return kExitOk;
}

}  // namespace

void register_eval_detect(CLI::App& eval, std::function<void(int)> set_rc) {
  static DetectEvalArgs det;
  auto* d = eval.add_subcommand("detect", "WIDER FACE average precision on the easy, medium and hard subsets "
                                          "(detections kept down to confidence 0.02 unless --det-score)");
  d->add_option("--images", det.images, "the images folder (holding <event>/<file>.jpg)")->required();
  d->add_option("--gt", det.gt, "wider_face_val_bbx_gt.txt (or a subset of it: only its images are evaluated)")->required();
  d->add_option("--mat-dir", det.mat_dir, "folder with wider_{easy,medium,hard}_val.mat (default: the --gt file's folder)");
  d->add_option("--max-faces", det.max_faces, "keep at most this many detections per image, best first (default 750, "
                                              "as RetinaFace's evaluation; 0: all)")
      ->check(CLI::Range(0, 1000000));
  add_output_options(*d, det.o, det.out, "the precision/recall curves");
  d->callback([set_rc] { set_rc(run_detect_eval(det)); });
}

}  // namespace facerec::cli::evalcli
