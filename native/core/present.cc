// concat_present: one contiguous block per (b, h) row of the output, past then new, copied by
// whichever thread takes the row. Decode calls are mostly this copy (the past is the whole cache),
// so it runs on every thread; below 256 KiB one thread is faster than waking the team.
#include "attn/present.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "attn/threads.h"

namespace attn {

Status concat_present(const PresentArgs& a) {
  const size_t rows = a.B * a.H, total = a.P + a.S;
  const size_t bytes = rows * total * a.d * sizeof(float);
  const int threads = bytes < (size_t{1} << 18) ? 1 : static_cast<int>(std::min<size_t>(num_threads(), rows));
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(threads, [&](Team& team) {
    team.for_dynamic(rows, 1, [&](size_t bh) {
      const size_t b = bh / a.H, h = bh % a.H;
      float* dst = a.out + bh * total * a.d;
      if (a.P != 0) std::memcpy(dst, a.past + bh * a.P * a.d, a.P * a.d * sizeof(float));
      const float* src = a.x.data + b * a.x.sb + h * a.x.sh;
      float* tail = dst + a.P * a.d;
      if (a.x.st == a.d) {
        std::memcpy(tail, src, a.S * a.d * sizeof(float));
      } else {
        for (size_t s = 0; s < a.S; ++s) std::memcpy(tail + s * a.d, src + s * a.x.st, a.d * sizeof(float));
      }
    });
  });
  return Status::kOk;
}

}  // namespace attn
