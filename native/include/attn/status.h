// Status codes returned by everything under native/core and native/kernels. The core never
// throws and never sees N-API; the binding layer turns a status into a JS error.
#pragma once

namespace attn {

enum class Status {
  kOk = 0,
  kBadShape,      // an internal precondition on sizes failed (the binding should have caught it)
  kOutOfMemory,   // scratch allocation failed
};

inline const char* status_message(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kBadShape: return "internal shape check failed";
    case Status::kOutOfMemory: return "out of memory allocating scratch space";
  }
  return "unknown status";
}

}  // namespace attn
