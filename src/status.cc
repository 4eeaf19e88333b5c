#include "facerec/status.h"

namespace facerec {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kDecode: return "cannot decode";
    case ErrorCode::kTooLarge: return "too large";
    case ErrorCode::kModel: return "model error";
    case ErrorCode::kHashMismatch: return "hash mismatch";
    case ErrorCode::kNoFace: return "no face";
    case ErrorCode::kMismatch: return "mismatch";
    case ErrorCode::kDatabase: return "database error";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal error";
    case ErrorCode::kAlreadyExists: return "already exists";
  }
  return "unknown error";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(facerec::to_string(code_)) + ": " + message_;
}

}  // namespace facerec
