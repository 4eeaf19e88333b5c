// The `facerec eval` subcommands' shared printing: each protocol runs in the
// library (facerec/eval_*.h); its cmd_eval_<protocol>.cc parses the flags and
// prints the result (a human summary, or one JSON object with --json), and
// may write a PNG plot (--plot) and the raw scores (--dump-scores).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "app.h"
#include "facerec/eval_protocol.h"

namespace facerec::cli::evalcli {

struct EvalOutput {
  std::string plot;  // PNG path; empty = none
  std::string dump;  // raw scores; empty = none
};

// --json, --plot, --dump-scores and the model options.
void add_output_options(CLI::App& cmd, CommonOptions& o, EvalOutput& out, const std::string& plot_what);

// Percent with two decimals, or n/a.
std::string pct(double v);
// v with `digits` decimals, or n/a.
std::string fixed(double v, int digits);
double seconds_since(std::chrono::steady_clock::time_point t0);

// Prints "facerec eval <cmd>: <status>" on stderr; the exit code for it.
int fail(const std::string& cmd, const Status& s);

// A y-axis floor that keeps the interesting part of a rate curve readable:
// the tenth below the lowest value shown, at least 0.
double rate_floor(double lowest);

// {"detector": id, "embedder": id} of the context's models.
nlohmann::json models_json(const Context& ctx);

// Progress on stderr (a line redrawn on a terminal every `tty_every` steps
// and at the end; a line per `log_every` steps otherwise), Ctrl-C
// (g_interrupted) and notes (a line on stderr), as library hooks. The line
// is cleared when a phase ends and at destruction.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(size_t log_every = 1000, size_t tty_every = 10, bool redraw_at_end = true);
  ~ProgressPrinter();
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;
  // Valid while this printer lives.
  eval::ProtocolHooks hooks();
  // Clears the progress line (before printing the results).
  void finish();

 private:
  void step(const std::string& what, size_t done, size_t total);
  size_t log_every_, tty_every_;
  bool redraw_at_end_, tty_;
  std::string what_;
  size_t shown_ = 0;  // steps seen in the current phase
};

void register_eval_lfw(CLI::App& eval, std::function<void(int)> set_rc);        // cmd_eval_lfw.cc
void register_eval_identify(CLI::App& eval, std::function<void(int)> set_rc);   // cmd_eval_identify.cc
void register_eval_calibrate(CLI::App& eval, std::function<void(int)> set_rc);  // cmd_eval_calibrate.cc
void register_eval_detect(CLI::App& eval, std::function<void(int)> set_rc);     // cmd_eval_detect.cc

}  // namespace facerec::cli::evalcli
