// The linear driver (attn/linear.h): picks the kernel for the weight type and hands each thread a
// contiguous slice of W's rows, so each thread streams its own part of W once.
#include "attn/linear.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "attn/kernels.h"
#include "attn/matmul.h"
#include "attn/threads.h"

namespace attn {
namespace {

// Below this many weight bytes one thread is faster than waking a team.
constexpr size_t kSerialBytes = size_t{1} << 18;
// Slices start on multiples of this many rows (the kernels' row groups, and whole cache lines of y).
constexpr size_t kRowAlign = 16;
// With many rows of x, W is walked in blocks of about this many bytes (they stay in L2 while every
// chunk of kChunkRows rows of x passes over them), so W still comes from memory once.
constexpr size_t kBlockBytes = size_t{1} << 18;
constexpr size_t kChunkRows = 32;
// Floats per cache line. A batch's tiles load each x vector once per group of W rows; rows of x
// off a line split every load in two (the decoder's buffers are std::vectors, 16-byte aligned),
// and F32 batches of 8 ran 15-20% slower that way on Zen 5, so such x is copied to aligned rows.
constexpr size_t kLineFloats = 64 / sizeof(float);

size_t dtype_bytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

GemvFn gemv_for(const KernelTable& kt, DType dtype) {
  switch (dtype) {
    case DType::kF16: return kt.gemv_f16;
    case DType::kBF16: return kt.gemv_bf16;
    default: return kt.gemv_f32;
  }
}

// Rows [r0, r1) of W against every row of x.
void run_slice(GemvFn gemv, const LinearArgs& a, size_t r0, size_t r1) {
  const size_t eb = dtype_bytes(a.w_dtype);
  const char* w = static_cast<const char*>(a.w);
  const size_t block = a.m <= kChunkRows ? r1 - r0 : std::max<size_t>(kRowAlign, kBlockBytes / (a.k * eb + 1));
  for (size_t b0 = r0; b0 < r1; b0 += block) {
    const size_t rows = std::min(block, r1 - b0);
    for (size_t i = 0; i < a.m; i += kChunkRows) {
      gemv(w + b0 * a.k * eb, a.k, rows, a.x + i * a.ldx, a.ldx, std::min(kChunkRows, a.m - i), a.k,
           a.y + i * a.ldy + b0, a.ldy);
    }
    if (a.bias) {
      for (size_t i = 0; i < a.m; ++i) {
        float* y = a.y + i * a.ldy;
        for (size_t j = b0; j < b0 + rows; ++j) y[j] += a.bias[j];
      }
    }
  }
}

// x copied into rows ldx floats apart that start on cache lines (grow-only per calling thread, as
// in linear_widened); null when the allocation fails.
const float* aligned_x(const LinearArgs& a, size_t ldx) {
  static thread_local std::vector<float> buf;
  try {
    if (buf.size() < a.m * ldx + kLineFloats) buf.resize(a.m * ldx + kLineFloats);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  const size_t skew = reinterpret_cast<uintptr_t>(buf.data()) / sizeof(float) % kLineFloats;
  float* x = buf.data() + (kLineFloats - skew) % kLineFloats;
  for (size_t i = 0; i < a.m; ++i) std::copy_n(a.x + i * a.ldx, a.k, x + i * ldx);
  return x;
}

// 16-bit W, many rows of x: the packed GEMM, W's rows widened block by block as they are packed
// (MatmulArgs::b16), so W is read once, at 2 bytes, and nothing as large as W is written.
Status linear_widened(const LinearArgs& a) {
  const bool plain_x = a.ldx == a.k, plain_y = a.ldy == a.n;
  // Grow-only per calling thread (a decode step's pool thread keeps its own).
  static thread_local std::vector<float> x_buf, out_buf;
  try {
    if (!plain_x && x_buf.size() < a.m * a.k) x_buf.resize(a.m * a.k);
    if (!plain_y && out_buf.size() < a.m * a.n) out_buf.resize(a.m * a.n);
  } catch (const std::bad_alloc&) {
    return Status::kOutOfMemory;
  }
  if (!plain_x) {
    for (size_t i = 0; i < a.m; ++i) std::copy_n(a.x + i * a.ldx, a.k, x_buf.data() + i * a.k);
  }
  MatmulArgs mm;
  mm.a = plain_x ? a.x : x_buf.data();
  mm.b16 = static_cast<const uint16_t*>(a.w);
  mm.b_dtype = a.w_dtype;
  mm.bias = a.bias;
  mm.c = plain_y ? a.y : out_buf.data();
  mm.m = a.m;
  mm.k = a.k;
  mm.n = a.n;
  mm.trans_b = true;
  const Status status = matmul(mm);
  if (status == Status::kOk && !plain_y) {
    for (size_t i = 0; i < a.m; ++i) std::copy_n(out_buf.data() + i * a.n, a.n, a.y + i * a.ldy);
  }
  return status;
}

}  // namespace

Status linear(const LinearArgs& a) {
  if (a.k == 0 || a.ldx < a.k || a.ldy < a.n) return Status::kBadShape;
  if (a.m == 0 || a.n == 0) return Status::kOk;
  if (a.w_dtype == DType::kF32 && a.m > kGemvMaxRows && a.ldx == a.k && a.ldy == a.n) {
    MatmulArgs mm;
    mm.a = a.x;
    mm.b = static_cast<const float*>(a.w);
    mm.bias = a.bias;
    mm.c = a.y;
    mm.m = a.m;
    mm.k = a.k;
    mm.n = a.n;
    mm.trans_b = true;
    return matmul(mm);
  }
  if (a.m > kGemvMaxRows && a.w_dtype != DType::kF32) return linear_widened(a);  // F32 with padded rows: below
  LinearArgs args = a;
  if (a.m > 1 && (reinterpret_cast<uintptr_t>(a.x) % (kLineFloats * sizeof(float)) != 0 || a.ldx % kLineFloats != 0)) {
    args.ldx = (a.k + kLineFloats - 1) / kLineFloats * kLineFloats;
    args.x = aligned_x(a, args.ldx);
    if (args.x == nullptr) return Status::kOutOfMemory;
  }
  const GemvFn gemv = gemv_for(kernels(), a.w_dtype);
  const size_t bytes = a.n * a.k * dtype_bytes(a.w_dtype);
  const size_t groups = (a.n + kRowAlign - 1) / kRowAlign;
  const int threads = bytes < kSerialBytes ? 1 : static_cast<int>(std::min<size_t>(num_threads(), groups));
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(threads, [&](Team& team) {
    const size_t per = (groups + team.size() - 1) / team.size();
    const size_t r0 = std::min(a.n, team.rank() * per * kRowAlign);
    const size_t r1 = std::min(a.n, (team.rank() + 1) * per * kRowAlign);
    if (r0 < r1) run_slice(gemv, args, r0, r1);
  });
  return Status::kOk;
}

}  // namespace attn
