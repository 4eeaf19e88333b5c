// A minimal protobuf wire-format walk over the few ONNX messages on the path
// ModelProto.graph -> GraphProto.input/output -> ValueInfoProto.type ->
// TypeProto.tensor_type -> Tensor.shape -> TensorShapeProto.dim[0]. Every
// other field is copied byte for byte. Field numbers are onnx.proto3's.
#include "runtime/onnx_batch.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

namespace facerec::runtime_internal {

namespace {

// ModelProto
constexpr uint32_t kModelGraph = 7;
// GraphProto
constexpr uint32_t kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12, kGraphValueInfo = 13;
// TensorProto
constexpr uint32_t kTensorName = 8;
// ValueInfoProto
constexpr uint32_t kValueInfoName = 1, kValueInfoType = 2;
// TypeProto / TypeProto.Tensor / TensorShapeProto / Dimension
constexpr uint32_t kTypeTensor = 1, kTensorTypeShape = 2, kShapeDim = 1, kDimValue = 1, kDimParam = 2;

struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t value = 0;          // wire 0
  std::string_view payload;    // wire 2
  std::string_view raw;        // the whole field, tag included
};

class Reader {
 public:
  explicit Reader(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}
  bool done() const { return p_ == end_; }
  // False at a malformed field (the caller gives up).
  bool next(Field& f) {
    const char* start = p_;
    uint64_t tag = 0;
    if (!varint(tag)) return false;
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire = static_cast<int>(tag & 7);
    switch (f.wire) {
      case 0:
        if (!varint(f.value)) return false;
        break;
      case 1:
        if (end_ - p_ < 8) return false;
        p_ += 8;
        break;
      case 5:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        break;
      case 2: {
        uint64_t n = 0;
        if (!varint(n) || n > static_cast<uint64_t>(end_ - p_)) return false;
        f.payload = std::string_view(p_, static_cast<size_t>(n));
        p_ += n;
        break;
      }
      default:
        return false;  // groups (3, 4) are not used by ONNX
    }
    f.raw = std::string_view(start, static_cast<size_t>(p_ - start));
    return f.number != 0;
  }

 private:
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      const auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  const char* p_;
  const char* end_;
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_bytes(std::string& out, uint32_t number, std::string_view payload) {
  put_varint(out, (static_cast<uint64_t>(number) << 3) | 2);
  put_varint(out, payload.size());
  out.append(payload);
}

Status bad(const std::string& why) { return Status(ErrorCode::kModel, "cannot make the batch dynamic: " + why); }

// Rewrites the length-delimited fields numbered `number` of `msg` with
// `patch` (only the first when `first_only`); copies everything else.
template <class Patch>
Result<std::string> rewrite(std::string_view msg, uint32_t number, bool first_only, Patch&& patch, int* patched) {
  std::string out;
  out.reserve(msg.size() + 8);
  Reader r(msg);
  Field f;
  int n = 0;
  while (!r.done()) {
    if (!r.next(f)) return bad("malformed protobuf");
    if (f.number == number && f.wire == 2 && !(first_only && n > 0)) {
      FACEREC_ASSIGN_OR_RETURN(std::optional<std::string> changed, patch(f.payload));
      ++n;
      if (changed) {
        put_bytes(out, number, *changed);
        continue;
      }
    }
    out.append(f.raw);
  }
  if (patched) *patched = n;
  return out;
}

// Dimension: dim_value 1 becomes dim_param "N".
Result<std::optional<std::string>> patch_dim(std::string_view dim) {
  std::string out;
  Reader r(dim);
  Field f;
  bool was_one = false;
  while (!r.done()) {
    if (!r.next(f)) return bad("malformed dimension");
    if (f.number == kDimValue && f.wire == 0) {
      if (f.value != 1) return bad("a batch dimension of " + std::to_string(f.value) + ", not 1");
      was_one = true;
      continue;
    }
    if (f.number == kDimParam) return bad("the batch dimension is already symbolic");
    out.append(f.raw);
  }
  if (!was_one) return bad("a batch dimension without a value");
  put_bytes(out, kDimParam, "N");
  return std::optional<std::string>(std::move(out));
}

Result<std::optional<std::string>> patch_value_info(std::string_view vi) {
  int found = 0;
  auto shape = [](std::string_view s) -> Result<std::optional<std::string>> {
    int dims = 0;
    FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(s, kShapeDim, true, patch_dim, &dims));
    if (dims == 0) return bad("a scalar input or output");
    return std::optional<std::string>(std::move(out));
  };
  auto tensor = [&](std::string_view s) -> Result<std::optional<std::string>> {
    int shapes = 0;
    FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(s, kTensorTypeShape, true, shape, &shapes));
    if (shapes == 0) return bad("an input or output without a shape");
    return std::optional<std::string>(std::move(out));
  };
  auto type = [&](std::string_view s) -> Result<std::optional<std::string>> {
    int tensors = 0;
    FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(s, kTypeTensor, true, tensor, &tensors));
    if (tensors == 0) return bad("an input or output that is not a tensor");
    return std::optional<std::string>(std::move(out));
  };
  FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(vi, kValueInfoType, true, type, &found));
  if (found == 0) return bad("an input or output without a type");
  return std::optional<std::string>(std::move(out));
}

std::string_view name_field(std::string_view msg, uint32_t number) {
  Reader r(msg);
  Field f;
  while (!r.done() && r.next(f))
    if (f.number == number && f.wire == 2) return f.payload;
  return {};
}

Result<std::optional<std::string>> patch_graph(std::string_view graph) {
  std::set<std::string_view> initializers;
  {
    Reader r(graph);
    Field f;
    while (!r.done()) {
      if (!r.next(f)) return bad("malformed graph");
      if (f.number == kGraphValueInfo) return bad("the graph records intermediate shapes (value_info)");
      if (f.number == kGraphInitializer && f.wire == 2) initializers.insert(name_field(f.payload, kTensorName));
    }
  }
  auto input = [&](std::string_view vi) -> Result<std::optional<std::string>> {
    if (initializers.count(name_field(vi, kValueInfoName))) return std::optional<std::string>();  // a weight
    return patch_value_info(vi);
  };
  int inputs = 0, outputs = 0;
  FACEREC_ASSIGN_OR_RETURN(std::string with_inputs, rewrite(graph, kGraphInput, false, input, &inputs));
  FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(with_inputs, kGraphOutput, false, patch_value_info, &outputs));
  if (inputs == 0 || outputs == 0) return bad("a graph without inputs or outputs");
  return std::optional<std::string>(std::move(out));
}

}  // namespace

Result<std::string> make_batch_dynamic(const std::string& model) {
  int graphs = 0;
  FACEREC_ASSIGN_OR_RETURN(std::string out, rewrite(model, kModelGraph, true, patch_graph, &graphs));
  if (graphs == 0) return bad("no graph (not an ONNX model?)");
  return out;
}

}  // namespace facerec::runtime_internal
