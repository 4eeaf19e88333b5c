// facerec eval lfw|identify|calibrate|detect|erc: the field's standard
// numbers, measured by facerec itself. The protocols are the library's
// (facerec/eval_*.h); each subcommand's file parses its flags and prints.
// This file holds what they share and registers them.
#include "cmd_eval.h"

#include <algorithm>
#include <cmath>
#include <iostream>

namespace facerec::cli {
namespace evalcli {

void add_output_options(CLI::App& cmd, CommonOptions& o, EvalOutput& out, const std::string& plot_what) {
  cmd.add_flag("--json", o.json, "print one JSON object instead of the summary");
  cmd.add_option("--plot", out.plot, "write " + plot_what + " as a PNG here");
  cmd.add_option("--dump-scores", out.dump, "write the raw scores here, to recompute every number");
  add_model_options(cmd, o);
}

std::string pct(double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int fail(const std::string& cmd, const Status& s) {
  std::cerr << "facerec eval " << cmd << ": " << s.to_string() << "\n";
  return s.code() == ErrorCode::kCancelled ? kExitInterrupted : kExitError;
}

double rate_floor(double lowest) {
  if (!std::isfinite(lowest)) return 0.0;
  return std::clamp(std::floor(lowest * 10 - 1e-9) / 10, 0.0, 0.9);
}

nlohmann::json models_json(const Context& ctx) {
  return {{"detector", ctx.analyzer->detector().spec().id}, {"embedder", ctx.analyzer->embedder().spec().id}};
}

ProgressPrinter::ProgressPrinter(size_t log_every, size_t tty_every, bool redraw_at_end)
    : log_every_(log_every), tty_every_(tty_every), redraw_at_end_(redraw_at_end), tty_(isatty(STDERR_FILENO)) {}

ProgressPrinter::~ProgressPrinter() { finish(); }

void ProgressPrinter::finish() {
  if (tty_ && shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = 0;
}

void ProgressPrinter::step(const std::string& what, size_t done, size_t total) {
  if (what != what_) {
    finish();
    what_ = what;
  }
  ++shown_;
  if (tty_ && (done % tty_every_ == 0 || (redraw_at_end_ && done == total)))
    std::fprintf(stderr, "\r\033[K%s %zu/%zu", what.c_str(), done, total);
  else if (!tty_ && done % log_every_ == 0)
    std::fprintf(stderr, "%s %zu/%zu\n", what.c_str(), done, total);
}

eval::ProtocolHooks ProgressPrinter::hooks() {
  eval::ProtocolHooks h;
  h.progress = [this](const std::string& what, size_t done, size_t total) { step(what, done, total); };
  h.cancelled = [] { return g_interrupted.load(); };
  h.note = [](const std::string& message) { std::fprintf(stderr, "%s\n", message.c_str()); };
  return h;
}

}  // namespace evalcli

void register_eval(CLI::App& app, std::function<void(int)> set_rc) {
  auto* ev = app.add_subcommand("eval", "measure accuracy on standard protocols: LFW, 1:N identification, WIDER FACE");
  ev->require_subcommand(1);
  evalcli::register_eval_lfw(*ev, set_rc);
  evalcli::register_eval_identify(*ev, set_rc);
  evalcli::register_eval_calibrate(*ev, set_rc);
  evalcli::register_eval_detect(*ev, set_rc);
  register_eval_erc(*ev, set_rc);
}

}  // namespace facerec::cli
