#include "python_converter.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace facerec::cli {

int spawn_and_wait(const std::vector<std::string>& argv) {
  std::vector<std::string> env_store;
  std::string pythonpath = std::string("PYTHONPATH=") + FACEREC_SOURCE_DIR;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "PYTHONPATH=", 11) == 0) pythonpath += std::string(":") + (*e + 11);
    else env_store.emplace_back(*e);
  }
  env_store.push_back(pythonpath);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The child's stdout goes to our stderr: stdout carries only the result.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  const int started = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (started != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string python_interpreter() {
  const char* p = std::getenv("FACEREC_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

Status PythonModelConverter::convert(const ModelSpec& spec, const std::string& source, const std::string& out) {
  const std::string python = python_interpreter();
  if (access(python.c_str(), X_OK) != 0)
    return Status(ErrorCode::kNotFound, "needs " + python + " with python3-onnx, python3-numpy and "
                                        "python3-flatbuffers (Debian: apt-get install python3 python3-onnx "
                                        "python3-flatbuffers), and it is not there");
  if (spec.convert.empty()) return Status(ErrorCode::kInvalidArgument, "model '" + spec.id + "' names no converter");
  const std::string& tool = spec.convert.front();  // tflite_import or ultraface_resize (checked by Manifest::load)
  std::vector<std::string> argv = {python, "-m", "tools." + tool, source, out};
  argv.insert(argv.end(), spec.convert.begin() + 1, spec.convert.end());
  const int rc = spawn_and_wait(argv);
  if (rc == 0) return Status::Ok();
  if (rc < 0) return Status(ErrorCode::kIo, "could not start " + python);
  if (rc == 4)
    return Status(ErrorCode::kNotFound, python + " lacks a module it needs (see the message above; Debian: "
                                                 "apt-get install python3-onnx python3-flatbuffers)");
  if (rc == 2)
    return Status(ErrorCode::kModel, "the converter (tools." + tool + ") refused the model (see the message above)");
  return Status(ErrorCode::kIo, python + " -m tools." + tool + " failed (exit " + std::to_string(rc) + ")");
}

Status PythonModelConverter::quantize(const ModelSpec& spec, const std::string& out) {
  const std::string python = python_interpreter();
  if (access(python.c_str(), X_OK) != 0)
    return Status(ErrorCode::kNotFound, "needs " + python + " with python3-onnx and python3-numpy "
                                        "(Debian: apt-get install python3 python3-onnx), and it is not there");
  const int rc =
      spawn_and_wait({python, "-m", "tools.quantize", "apply", spec.quantize_source, spec.quantize_recipe, out});
  if (rc == 0) return Status::Ok();
  if (rc < 0) return Status(ErrorCode::kIo, "could not start " + python);
  return Status(ErrorCode::kIo, python + " -m tools.quantize apply failed (exit " + std::to_string(rc) +
                                    ", message above)");
}

}  // namespace facerec::cli
