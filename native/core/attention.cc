// attn::attention: checks the internal preconditions (the binding has already checked every size
// against the real buffers) and picks the path:
//   qk_mode >= 0          -> attention_scores.cc  (materializes the requested score matrix)
//   Sq <= kDecodeMaxSq    -> attention_decode.cc  (all rows of a kv group in one tile, keys split)
//   otherwise             -> attention_flash.cc   (prefill tiles over query blocks)
// Every path holds compute_lock() for its parallel region, so concurrent calls take turns on the
// cores instead of oversubscribing them.
#include <mutex>

#include "attention_internal.h"
#include "attn/threads.h"

namespace attn {

namespace {

// Up to this many query positions, one tile holds all of them and the keys are split instead.
constexpr size_t kDecodeMaxSq = 8;

bool view_ok(const View4& v, size_t B, size_t H, size_t S, size_t D) {
  return v.data != nullptr || B == 0 || H == 0 || S == 0 || D == 0;
}

}  // namespace

Status attention(const AttentionArgs& a) {
  if (a.Hq == 0 || a.Hkv == 0 || a.Hq % a.Hkv != 0) return Status::kBadShape;
  if (a.mask_f32 != nullptr && a.mask_u8 != nullptr) return Status::kBadShape;
  if ((a.mask_f32 != nullptr || a.mask_u8 != nullptr) && a.mask_len > a.Skv) return Status::kBadShape;
  if (a.qk_mode < -1 || a.qk_mode > 3 || (a.qk_mode >= 0 && a.qk_out == nullptr && a.B * a.Sq * a.Skv != 0)) {
    return Status::kBadShape;
  }
  if (a.kv_dtype != DType::kF32 && a.kv_dtype != DType::kF16 && a.kv_dtype != DType::kBF16) return Status::kBadShape;
  const bool half = a.kv_dtype != DType::kF32;
  const bool keys_ok = half ? a.k16 != nullptr || a.B * a.Hkv * a.Skv * a.D == 0 : view_ok(a.k, a.B, a.Hkv, a.Skv, a.D);
  const bool values_ok = half ? a.v16 != nullptr || a.B * a.Hkv * a.Skv * a.Dv == 0 : view_ok(a.v, a.B, a.Hkv, a.Skv, a.Dv);
  if (!view_ok(a.q, a.B, a.Hq, a.Sq, a.D) || !keys_ok || !values_ok || (a.y == nullptr && a.B * a.Sq * a.Dv != 0)) {
    return Status::kBadShape;
  }
  if (a.B == 0 || a.Sq == 0) return Status::kOk;

  std::lock_guard<std::mutex> lock(compute_lock());
  if (a.qk_mode >= 0) return detail::attention_scores(a);
  if (a.Sq <= kDecodeMaxSq) return detail::attention_decode(a);
  return detail::attention_flash(a);
}

}  // namespace attn
