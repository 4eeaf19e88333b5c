// The facerec CLI's ModelConverter (include/facerec/models.h): the Python
// steps of `facerec models fetch`, each run as
//   $FACEREC_PYTHON (default /usr/bin/python3) -m tools.<name> ...
// from the source tree (PYTHONPATH), started with posix_spawn: no shell, so
// no manifest field is ever interpreted by one. The library itself starts no
// process; this lives beside the CLI, which already runs Python for
// `models import` and `models quantize`.
#pragma once

#include <string>
#include <vector>

#include "facerec/models.h"

namespace facerec::cli {

// Runs argv (argv[0] a path, not searched in $PATH) with PYTHONPATH starting
// at the source tree, its stdout sent to our stderr (our stdout carries only
// results); waits for it. Returns its exit status, 128+signal when killed, or
// -1 when it could not start.
int spawn_and_wait(const std::vector<std::string>& argv);

// The interpreter the converters run under: $FACEREC_PYTHON, else /usr/bin/python3.
std::string python_interpreter();

// tools.tflite_import / tools.ultraface_resize (convert) and tools.quantize
// apply (quantize). Errors: kNotFound when the interpreter or one of its
// modules (python3-onnx, numpy, flatbuffers) is missing, saying what to
// install; kModel when the converter refuses the model (exit 2); kIo for any
// other failure. The converter's own message is on stderr above.
class PythonModelConverter final : public ModelConverter {
 public:
  Status convert(const ModelSpec& spec, const std::string& source, const std::string& out) override;
  Status quantize(const ModelSpec& spec, const std::string& out) override;
};

}  // namespace facerec::cli
