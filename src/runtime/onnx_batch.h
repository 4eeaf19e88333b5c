// Private to src/runtime: declaring a model's batch dimension dynamic, for
// networks whose graph works at any batch but was exported with batch 1
// (fr_landmark: Conv/Relu/Flatten(axis 1)/Gemm, declared [1,1,64,64]).
#pragma once

#include <string>

#include "facerec/status.h"

namespace facerec::runtime_internal {

// model: the bytes of an ONNX ModelProto. Returns the same model with dim 0 of
// every graph input (initializers excluded) and every graph output changed
// from the fixed value 1 to the symbol "N"; nothing else changes. kModel when
// the bytes are not a well-formed protobuf, when some input or output's dim 0
// is not 1, or when the graph carries value_info (intermediate shapes that
// would contradict a new batch size): the caller then loads the model as it is.
Result<std::string> make_batch_dynamic(const std::string& model);

}  // namespace facerec::runtime_internal
