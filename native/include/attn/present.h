// ONNX Attention's present key/value: past (B, H, P, d) contiguous, then the S new rows of each
// head, read from a strided view (4-D [B, H, S, d] or 3-D [B, S, H*d] inputs alike), into
// out (B, H, P + S, d) contiguous. A memory copy, split across the thread team by (b, h) rows.
#pragma once
#include <cstddef>

#include "attn/attention.h"
#include "attn/status.h"

namespace attn {

struct PresentArgs {
  size_t B = 0, H = 0, P = 0, S = 0, d = 0;
  const float* past = nullptr;  // B * H * P * d
  View4 x;                      // element (b, h, s, e) at x.data[b*sb + h*sh + s*st + e]
  float* out = nullptr;         // B * H * (P + S) * d
};

Status concat_present(const PresentArgs& args);

}  // namespace attn
