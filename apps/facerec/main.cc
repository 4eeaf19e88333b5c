// facerec: detect, align, embed, enrol, identify and verify faces.
// Subcommands come from one table; each registers itself with a one-line help.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "app.h"

// AddressSanitizer builds (FACEREC_SANITIZE, scripts/sanitize.sh): the exit
// below skips LeakSanitizer's exit handler too, so main runs the leak check
// itself.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define FACEREC_LEAK_CHECK() __lsan_do_leak_check()
#else
#define FACEREC_LEAK_CHECK() ((void)0)
#endif

namespace {
int run(int argc, char** argv) {
  using namespace facerec::cli;
  CLI::App app{"facerec: face recognition on real weights (detect, align, embed, enrol, identify, verify)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "facerec 0.1");
  int rc = kExitOk;
  auto set_rc = [&rc](int r) { rc = r; };
  struct Entry { void (*reg)(CLI::App&, std::function<void(int)>); };
  const Entry kCommands[] = {{register_models}, {register_align}, {register_enroll}, {register_gallery},
                             {register_identify}, {register_verify}, {register_watch},
                             {register_eval}, {register_embed}, {register_serve}};
  for (const auto& c : kCommands) c.reg(app, set_rc);
  install_signal_handlers();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  } catch (const std::bad_alloc&) {
    std::cerr << "facerec: out of memory\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "facerec: internal error: " << e.what() << "\n";
    return kExitError;
  }
  return rc;
}
}  // namespace

int main(int argc, char** argv) {
  const int rc = run(argc, argv);
  // Every command has closed its galleries, models and files by now. Skip the
  // libraries' exit handlers: OpenBLAS's joins its worker threads, and a
  // worker that could not map its buffer (under `ulimit -v`) spins forever,
  // so a plain exit would hang after the error was already reported.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  FACEREC_LEAK_CHECK();  // a leak report ends the process (exit code 23, or abort)
  ::_exit(rc);
}
