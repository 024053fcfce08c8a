// isa_test NAME [--how=HOW]: the kernel-set test that needs no Node (npm run test:isa).
//
// Selects kernel set NAME through the core's own dispatch (select_isa), then runs the same checks
// for every set against float64 references: the table's kernels one by one (GEMM microkernel over
// every tile and vector edge, vector primitives, exp accuracy over a dense sweep of floats, the
// online-softmax step, QK/PV tiles, Llama row ops, matrix-vector products for F32/F16/BF16 weights
// and the 16-bit conversions on every bit pattern) and the core drivers on top of them (matmul,
// attention prefill / decode split / score output, linear). Inputs that a kernel must not read sit right before an
// unreadable page, and outputs it must not write are fenced with sentinels, so a tail handled
// one lane too wide fails here instead of corrupting a user's heap.
//
// Prints exactly one line on stdout, `isa NAME (HOW): N passed, M failed`, details of failures on
// stderr, and exits non-zero on any failure (or when this build/CPU cannot run NAME).
// HOW is "native", "simde" for the avx512 set of a -DATTN_AVX512_SIMDE=ON build, or what the
// caller says with --how= (scripts/test-isa.sh passes qemu-aarch64).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attn/attention.h"
#include "attn/half.h"
#include "attn/kernels.h"
#include "attn/kv_cache.h"
#include "attn/linear.h"
#include "attn/llama_ops.h"
#include "attn/matmul.h"
#include "attn/threads.h"

namespace {

using attn::KernelTable;

// ---------------------------------------------------------------------------------------------
// Reporting

struct Check {
  const char* name;
  int errors = 0;
};
Check* g_check = nullptr;

bool verbose() {
  const char* v = std::getenv("ISA_TEST_VERBOSE");
  return v != nullptr && v[0] != '\0' && v[0] != '0';
}

// Records a failure of the running check; prints the first few of each.
void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char* fmt, ...) {
  if (g_check->errors++ >= 5) return;
  std::fprintf(stderr, "  %s: ", g_check->name);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

bool close_to(double got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= tol;  // false for NaN got
}

// ---------------------------------------------------------------------------------------------
// Memory: `n` floats ending right before a PROT_NONE page, so reading one element past the end
// faults (under qemu-user too).

class Guarded {
 public:
  explicit Guarded(size_t n) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    bytes_ = (n * sizeof(float) + page - 1) / page * page + page;
    base_ = static_cast<char*>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) {
      std::perror("mmap");
      std::exit(2);
    }
    mprotect(base_ + bytes_ - page, page, PROT_NONE);
    data_ = reinterpret_cast<float*>(base_ + bytes_ - page) - n;
  }
  ~Guarded() { munmap(base_, bytes_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  float* data() { return data_; }
  float& operator[](size_t i) { return data_[i]; }
  size_t size() const { return n_; }

 private:
  size_t n_, bytes_;
  char* base_;
  float* data_;
};

// 64-byte aligned scratch, as the core's TileScratch is.
struct Aligned {
  explicit Aligned(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))), n(n) {}
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  float* p;
  size_t n;
};

std::mt19937 g_rng(12345);
float uniform(float lo = -1.f, float hi = 1.f) { return std::uniform_real_distribution<float>(lo, hi)(g_rng); }
size_t pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(g_rng); }
void fill(float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = uniform();
}

constexpr float kSentinel = 12345.f;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// GEMM microkernel: C[m x n_valid] (+)= A[m x kc] B[kc x n_valid] (+ bias), every layout of A the
// driver uses, every m and n_valid from 1 to past two tiles / one panel, depths around the vector
// widths. A rows past m and B columns past n_valid hold NaN (a kernel may read neither into a
// stored result); B's last row ends at a guard page; C is fenced with sentinels.

enum class ALayout { kPacked, kRowMajor, kTransposed };

void gemm_case(const KernelTable& kt, ALayout layout, size_t m, size_t nv, size_t kc, bool bias_on, bool accumulate,
               size_t ldb_extra) {
  const size_t MR = kt.gemm_mr, NR = kt.gemm_nr;
  const size_t tiles = (m + MR - 1) / MR, mp = tiles * MR;
  // A: element (i, p) at i * a_rs + p * a_cs within tile i / MR (a_ms apart).
  size_t a_rs, a_cs, a_ms, a_len;
  const size_t lda = kc + 3;  // in-place leading dimension, not a multiple of anything
  switch (layout) {
    case ALayout::kPacked: a_rs = 1, a_cs = MR, a_ms = MR * kc, a_len = mp * std::max<size_t>(kc, 1); break;
    case ALayout::kRowMajor: a_rs = lda, a_cs = 1, a_ms = MR * lda, a_len = m * lda; break;
    default: a_rs = 1, a_cs = mp + 2, a_ms = MR, a_len = std::max<size_t>(kc, 1) * (mp + 2); break;
  }
  std::vector<float> a(a_len, kNaN);
  std::vector<double> A(m * kc);
  for (size_t i = 0; i < m; ++i) {
    for (size_t p = 0; p < kc; ++p) {
      const float v = uniform();
      a[(i / MR) * a_ms + (i % MR) * a_rs + p * a_cs] = v;
      A[i * kc + p] = v;
    }
  }
  const size_t ldb = layout == ALayout::kPacked ? NR : nv + ldb_extra;
  // The last row of B ends right at the guard page: nothing past column n_valid - 1 is readable.
  Guarded b(std::max<size_t>(kc, 1) * ldb - (ldb - nv));
  for (size_t i = 0; i < b.size(); ++i) b[i] = (i % ldb) < nv ? uniform() : kNaN;
  Guarded bias(nv);
  fill(bias.data(), nv);

  const size_t ldc = nv + 5;
  std::vector<float> c((m + 2) * ldc, kSentinel);
  float* c0 = c.data() + ldc;  // a row of sentinels above
  std::vector<double> want(m * nv);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < nv; ++j) {
      double acc = 0.0;
      if (accumulate) {
        c0[i * ldc + j] = uniform();
        acc = c0[i * ldc + j];
      } else if (bias_on) {
        acc = bias[j];
      }
      for (size_t p = 0; p < kc; ++p) acc += A[i * kc + p] * static_cast<double>(b[p * ldb + j]);
      want[i * nv + j] = acc;
    }
  }
  kt.gemm_ukernel(m, nv, kc, a.data(), a_rs, a_cs, a_ms, b.data(), ldb, c0, ldc, bias_on ? bias.data() : nullptr,
                  accumulate);
  for (size_t r = 0; r < m + 2; ++r) {
    for (size_t j = 0; j < ldc; ++j) {
      const float got = c[r * ldc + j];
      const bool inside = r >= 1 && r <= m && j < nv;
      if (!inside) {
        if (got != kSentinel) fail("m=%zu n=%zu kc=%zu: C[%zu][%zu] outside the tile written", m, nv, kc, r, j);
        continue;
      }
      const double w = want[(r - 1) * nv + j];
      if (!close_to(got, w, 1e-5 * (1.0 + static_cast<double>(kc)))) {
        fail("layout=%d m=%zu n=%zu kc=%zu bias=%d acc=%d: C[%zu][%zu] = %.9g, want %.9g", static_cast<int>(layout), m,
             nv, kc, bias_on, accumulate, r - 1, j, got, w);
      }
    }
  }
}

const size_t kDepths[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};

// Every (m, n_valid) pair with three depths, rotating through kDepths so each depth meets every
// row and column edge across the sweep (all 12 for every pair would be 4x the time under qemu).
void gemm_sweep(const KernelTable& kt, ALayout layout, bool accumulate) {
  const size_t MR = kt.gemm_mr, NR = kt.gemm_nr;
  for (size_t m = 1; m <= 2 * MR + 1; ++m) {
    for (size_t nv = 1; nv <= NR; ++nv) {
      const size_t first = (m * 5 + nv) % 12;
      for (size_t step : {size_t{0}, size_t{4}, size_t{8}}) {
        const size_t kc = kDepths[(first + step) % 12];
        if (accumulate && kc == 0) continue;
        gemm_case(kt, layout, m, nv, kc, !accumulate && (m + nv) % 2 == 0, accumulate, (m + kc) % 3);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Vector primitives, lengths 0..70 (every tail of every vector width), the input ending at a
// guard page.

void vec_checks(const KernelTable& kt, int which) {
  for (size_t n = 0; n <= 70; ++n) {
    Guarded x(n), y(n);
    fill(x.data(), n);
    fill(y.data(), n);
    std::vector<float> y0(y.data(), y.data() + n);
    const float a = uniform();
    switch (which) {
      case 0: {
        double want = 0.0, mag = 0.0;
        for (size_t i = 0; i < n; ++i) {
          want += static_cast<double>(x[i]) * y[i];
          mag += std::fabs(static_cast<double>(x[i]) * y[i]);
        }
        const float got = kt.vec_dot(x.data(), y.data(), n);
        if (!close_to(got, want, 1e-6 * (1.0 + mag))) fail("n=%zu: %.9g, want %.9g", n, got, want);
        break;
      }
      case 1: {
        kt.vec_axpy(y.data(), x.data(), a, n);
        for (size_t i = 0; i < n; ++i) {
          const double want = y0[i] + static_cast<double>(a) * x[i];
          if (!close_to(y[i], want, 3e-7 * (1.0 + std::fabs(want)))) fail("n=%zu: y[%zu] = %.9g, want %.9g", n, i, y[i], want);
        }
        break;
      }
      case 2: {
        kt.vec_scale(y.data(), a, n);
        for (size_t i = 0; i < n; ++i) {
          const double want = static_cast<double>(a) * y0[i];
          if (!close_to(y[i], want, 1.2e-7 * std::fabs(want))) fail("n=%zu: y[%zu] = %.9g, want %.9g", n, i, y[i], want);
        }
        break;
      }
      default: {
        // All negative, so a tail padded with 0 instead of -inf would win; -inf entries too.
        for (size_t i = 0; i < n; ++i) x[i] = i % 7 == 3 ? -INFINITY : -1.f - std::fabs(x[i]);
        float want = -INFINITY;
        for (size_t i = 0; i < n; ++i) want = std::max(want, x[i]);
        const float got = kt.vec_max(x.data(), n);
        if (got != want) fail("n=%zu: %.9g, want %.9g", n, got, want);
        break;
      }
    }
  }
}

// exp through vec_expsum(x, 0, n) = (x <- exp(x), sum), over a dense sweep of float bit patterns
// (every 4099th float, both signs) plus the range edges; max relative error where e^x is normal.
constexpr double kExpMaxRelError = 2e-7;  // rr2_p5 measures 1.65e-7 over every float

void exp_sweep(const KernelTable& kt) {
  std::vector<float> xs;
  auto add_range = [&xs](uint32_t from, uint32_t to) {
    for (uint64_t bits = from; bits <= to; bits += 4099) {
      float f;
      const uint32_t b = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b, 4);
      xs.push_back(f);
    }
  };
  auto bits_of = [](float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
  };
  add_range(0, bits_of(89.f));                // +0 .. 89 (tiny values included: exp ~ 1)
  add_range(bits_of(-0.f), bits_of(-104.f));  // -0 .. -104
  for (float f : {-87.33f, -87.34f, -87.5f, -103.9f, -1e30f, 88.3f, 88.37f, 88.38f, 88.7f, 88.73f, 100.f, 1e30f}) {
    xs.push_back(f);
  }
  double worst = 0.0;
  float worst_x = 0.f;
  const size_t batch = 4093;  // odd, so every batch ends in a tail
  std::vector<float> buf(batch);
  for (size_t i0 = 0; i0 < xs.size(); i0 += batch) {
    const size_t n = std::min(batch, xs.size() - i0);
    std::copy_n(xs.data() + i0, n, buf.data());
    const float sum = kt.vec_expsum(buf.data(), 0.f, n);
    double want_sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const float x = xs[i0 + i], got = buf[i];
      const double want = std::exp(static_cast<double>(x));
      want_sum += got;
      if (x >= -87.33f && x <= 88.37f) {
        const double rel = std::fabs(got - want) / want;
        if (!(rel <= kExpMaxRelError)) fail("exp(%.9g) = %.9g, want %.9g (rel error %.3g)", x, got, want, rel);
        if (rel > worst) worst = rel, worst_x = x;
      } else if (x < -87.33f) {
        // Below the normal range: 0 or a denormal, never negative or NaN.
        if (!(got >= 0.f && got <= 1.2e-38f)) fail("exp(%.9g) = %.9g, want 0 or denormal", x, got);
      } else if (x < 88.7229f) {
        // Between the SIMD sets' overflow cut (88.376) and ln(FLT_MAX): +inf or accurate.
        if (!(std::isinf(got) || std::fabs(got - want) / want <= kExpMaxRelError)) fail("exp(%.9g) = %.9g", x, got);
      } else if (!std::isinf(got)) {
        fail("exp(%.9g) = %.9g, want +inf", x, got);
      }
    }
    // A float sum of n terms may be off by (n - 1) units of roundoff (the scalar set sums in order).
    if (!close_to(sum, want_sum, (static_cast<double>(n) * 6e-8 + 1e-6) * std::fabs(want_sum)) && !std::isinf(want_sum)) {
      fail("sum of a batch = %.9g, want %.9g", sum, want_sum);
    }
  }
  if (g_check->errors == 0 && verbose()) {
    std::fprintf(stderr, "  exp: %zu floats, max relative error %.3g at x = %.9g\n", xs.size(), worst, worst_x);
  }
}

// exp(x - max) with max subtracted in the kernel, special values, every tail length at a guard
// page: -inf gives 0, the max gives exactly 1.
void expsum_special(const KernelTable& kt) {
  for (size_t n = 1; n <= 40; ++n) {
    Guarded x(n);
    std::vector<float> x0(n);
    for (size_t i = 0; i < n; ++i) x0[i] = i % 5 == 2 ? -INFINITY : uniform(-30.f, 5.f);
    const float mx = *std::max_element(x0.begin(), x0.end());
    std::copy(x0.begin(), x0.end(), x.data());
    const float sum = kt.vec_expsum(x.data(), mx, n);
    double want_sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      // The kernel subtracts in float; the reference does the same, so only exp's error remains.
      const float d = x0[i] - mx;
      const double want = std::exp(static_cast<double>(d));
      want_sum += want;
      if (x0[i] == -INFINITY && x[i] != 0.f) fail("n=%zu: exp(-inf) = %.9g", n, x[i]);
      if (x0[i] == mx && mx != -INFINITY && x[i] != 1.f) fail("n=%zu: exp(max - max) = %.9g", n, x[i]);
      if (!close_to(x[i], want, 2.5e-7 * want + 1e-38)) fail("n=%zu: x[%zu] = %.9g, want %.9g", n, i, x[i], want);
    }
    if (!close_to(sum, want_sum, 1e-6 * want_sum)) fail("n=%zu: sum %.9g, want %.9g", n, sum, want_sum);
  }
}

void softcap_check(const KernelTable& kt) {
  for (size_t n = 0; n <= 40; ++n) {
    Guarded x(n);
    std::vector<float> x0(n);
    for (size_t i = 0; i < n; ++i) x0[i] = uniform(-200.f, 200.f) * (i % 3 == 0 ? 0.01f : 1.f);
    std::copy(x0.begin(), x0.end(), x.data());
    const float scale = 0.125f, cap = 30.f;
    kt.vec_softcap(x.data(), scale, cap, n);
    for (size_t i = 0; i < n; ++i) {
      const double want = cap * std::tanh(static_cast<double>(x0[i]) * scale / cap);
      if (!close_to(x[i], want, 1e-6 * std::fabs(want) + 1e-7)) fail("n=%zu: softcap(%.9g) = %.9g, want %.9g", n, x0[i], x[i], want);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Online-softmax step on a transposed tile: s[j * lds + r], rows r < nr (a multiple of 8), keys
// j < nk, keys j >= vis[r] masked whatever s holds there (NaN here).

struct SoftmaxState {
  std::vector<double> m, l;
};

// One step in float64 on the same inputs; returns p[j][r] and updates the state, alpha.
void softmax_ref(const std::vector<float>& s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                 SoftmaxState& st, std::vector<double>& p, std::vector<double>& alpha) {
  p.assign(nk * lds, 0.0);
  alpha.assign(nr, 0.0);
  for (size_t r = 0; r < nr; ++r) {
    // The kernels work in float up to the exp: x = scale * s, the max, x - max. The reference
    // does the same, so what is compared is the exp and the sums.
    auto x_of = [&](size_t j) {
      return j < static_cast<size_t>(std::max(vis[r], 0)) ? s[j * lds + r] * scale : -INFINITY;
    };
    float mx = static_cast<float>(st.m[r]);
    for (size_t j = 0; j < nk; ++j) mx = std::max(mx, x_of(j));
    const float mu = mx == -INFINITY ? 0.f : mx;
    const double a = std::exp(static_cast<double>(static_cast<float>(st.m[r]) - mu));
    double sum = 0.0;
    for (size_t j = 0; j < nk; ++j) {
      p[j * lds + r] = std::exp(static_cast<double>(x_of(j) - mu));
      sum += p[j * lds + r];
    }
    st.l[r] = a * st.l[r] + sum;
    st.m[r] = mx;
    alpha[r] = a;
  }
}

// mode 0: random scores; 1: every row fully masked; 2: -inf scores inside the visible range;
// 3: huge logits (|s| up to 1e30, so scale * s keeps its rounding in both passes).
void softmax_checks(const KernelTable& kt, int mode) {
  const size_t lds = 32;
  for (size_t nr : {size_t{8}, size_t{16}, size_t{24}, size_t{32}}) {
    for (size_t nk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{16}, size_t{33}, size_t{96}}) {
      Aligned s(nk * lds);
      std::vector<float> s0(nk * lds);
      std::vector<int32_t> vis(lds);
      SoftmaxState st{std::vector<double>(lds), std::vector<double>(lds)};
      std::vector<float> m(lds), l(lds), alpha(lds);
      for (size_t r = 0; r < lds; ++r) {
        // First step from the initial state; a second step carries (m, l) over.
        m[r] = -INFINITY;
        l[r] = 0.f;
        st.m[r] = -INFINITY;
        st.l[r] = 0.0;
      }
      const float scale = mode == 3 ? 1.f : 0.37f;
      for (int step = 0; step < 2; ++step) {
        for (size_t r = 0; r < lds; ++r) {
          vis[r] = mode == 1 ? 0 : static_cast<int32_t>((r % 4 == 1) ? pick(0, nk) : nk);
          if (r % 8 == 5 && mode != 1) vis[r] = 0;
        }
        for (size_t j = 0; j < nk; ++j) {
          for (size_t r = 0; r < lds; ++r) {
            float v = uniform(-8.f, 8.f);
            if (mode == 2 && (j + r) % 3 == 0) v = -INFINITY;
            if (mode == 2 && r % 8 == 6) v = -INFINITY;  // a row with only -inf visible
            if (mode == 3) v = (j + r) % 2 ? uniform(-1e30f, 1e30f) : uniform(-1e10f, 1e10f);
            // Masked entries hold garbage the kernel must ignore.
            s0[j * lds + r] = j < static_cast<size_t>(vis[r]) ? v : kNaN;
          }
        }
        std::copy(s0.begin(), s0.end(), s.p);
        std::vector<double> p, alpha_ref;
        softmax_ref(s0, lds, nk, nr, vis.data(), scale, st, p, alpha_ref);
        kt.attn_softmax(s.p, lds, nk, nr, vis.data(), scale, m.data(), l.data(), alpha.data());
        for (size_t r = 0; r < nr; ++r) {
          if (!(m[r] == static_cast<float>(st.m[r]))) fail("nr=%zu nk=%zu step=%d: m[%zu] = %.9g, want %.9g", nr, nk, step, r, m[r], st.m[r]);
          if (!close_to(alpha[r], alpha_ref[r], 2.5e-7 * alpha_ref[r] + 1e-38)) {
            fail("nr=%zu nk=%zu step=%d: alpha[%zu] = %.9g, want %.9g", nr, nk, step, r, alpha[r], alpha_ref[r]);
          }
          if (!close_to(l[r], st.l[r], 1e-5 * st.l[r] + 1e-38)) {
            fail("nr=%zu nk=%zu step=%d: l[%zu] = %.9g, want %.9g", nr, nk, step, r, l[r], st.l[r]);
          }
          for (size_t j = 0; j < nk; ++j) {
            const float got = s.p[j * lds + r];
            const double want = p[j * lds + r];
            // Masked keys must come out exactly 0 (PV may still multiply them), never NaN.
            if (j >= static_cast<size_t>(std::max(vis[r], 0)) && got != 0.f) {
              fail("nr=%zu nk=%zu: masked p[%zu][%zu] = %.9g", nr, nk, j, r, got);
            } else if (!close_to(got, want, 2.5e-7 * want + 1e-38)) {
              fail("nr=%zu nk=%zu step=%d: p[%zu][%zu] = %.9g, want %.9g", nr, nk, step, j, r, got, want);
            }
          }
        }
        // The kernel's float state is what the next step starts from.
        for (size_t r = 0; r < nr; ++r) st.m[r] = m[r], st.l[r] = l[r];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// QK tiles: s[j * lds + r] = k_j . q_r.

void qk_panel_check(const KernelTable& kt) {
  const size_t P = attn::kAttnPanel;
  for (size_t d : {size_t{1}, size_t{3}, size_t{4}, size_t{5}, size_t{8}, size_t{15}, size_t{16}, size_t{17}, size_t{64}}) {
    for (size_t nk = 1; nk <= 26; nk += (nk < 14 ? 1 : 6)) {
      const size_t k_st = d + 3, lds = 2 * P;
      Guarded k((nk - 1) * k_st + d);  // the last key row ends at the guard page
      fill(k.data(), k.size());
      Guarded qp(d * P);
      fill(qp.data(), qp.size());
      std::vector<float> s((nk + 1) * lds, kSentinel);
      // The panel's 16 rows at offset P of a 32-row tile; rows [0, P) must stay untouched.
      kt.attn_qk_panel(k.data(), k_st, nk, qp.data(), d, s.data() + P, lds);
      for (size_t j = 0; j < nk + 1; ++j) {
        for (size_t r = 0; r < lds; ++r) {
          const float got = s[j * lds + r];
          if (j == nk || r < P) {
            if (got != kSentinel) fail("d=%zu nk=%zu: s[%zu][%zu] written outside the panel", d, nk, j, r);
            continue;
          }
          double want = 0.0;
          for (size_t p = 0; p < d; ++p) want += static_cast<double>(k[j * k_st + p]) * qp[p * P + r - P];
          if (!close_to(got, want, 1e-6 * (1.0 + static_cast<double>(d)))) {
            fail("d=%zu nk=%zu: s[%zu][%zu] = %.9g, want %.9g", d, nk, j, r - P, got, want);
          }
        }
      }
    }
  }
}

void qk_rows_check(const KernelTable& kt) {
  for (size_t d : {size_t{1}, size_t{3}, size_t{4}, size_t{7}, size_t{8}, size_t{9}, size_t{16}, size_t{31}, size_t{64}}) {
    for (size_t nr = 1; nr <= 8; ++nr) {
      for (size_t nk : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{8}, size_t{13}, size_t{40}}) {
        const size_t k_st = d + 1, q_st = d + 2, lds = 16;
        Guarded k((nk - 1) * k_st + d);
        fill(k.data(), k.size());
        Guarded q((nr - 1) * q_st + d);
        fill(q.data(), q.size());
        std::vector<float> s((nk + 1) * lds, kSentinel);
        kt.attn_qk_rows(k.data(), k_st, nk, q.data(), q_st, nr, d, s.data(), lds);
        for (size_t j = 0; j < nk + 1; ++j) {
          for (size_t r = 0; r < lds; ++r) {
            const float got = s[j * lds + r];
            if (j == nk || r >= nr) {
              if (got != kSentinel) fail("d=%zu nr=%zu nk=%zu: s[%zu][%zu] written outside", d, nr, nk, j, r);
              continue;
            }
            double want = 0.0;
            for (size_t p = 0; p < d; ++p) want += static_cast<double>(k[j * k_st + p]) * q[r * q_st + p];
            if (!close_to(got, want, 1e-6 * (1.0 + static_cast<double>(d)))) {
              fail("d=%zu nr=%zu nk=%zu: s[%zu][%zu] = %.9g, want %.9g", d, nr, nk, j, r, got, want);
            }
          }
        }
      }
    }
  }
}

// PV: o_r <- alpha_r o_r + sum_{j < vis[r]} p[j][r] v_j. V holds exactly max(vis) rows, the last
// one ending at the guard page (keys past every row's limit must not be read); p is 0 past each
// row's limit, as the softmax step leaves it; columns past dv of each o row are sentinels.
void pv_check(const KernelTable& kt) {
  for (size_t nr = 1; nr <= 20; nr += (nr < 8 ? 1 : 5)) {
    for (size_t dv = 1; dv <= 70; dv += (dv < 36 ? 1 : 11)) {
      const size_t ldp = (nr + 15) / 16 * 16, ldo = dv + 3, v_st = dv + 2;
      std::vector<int32_t> vis(ldp, 0);
      int32_t vmax = 0;
      for (size_t r = 0; r < nr; ++r) {
        vis[r] = static_cast<int32_t>(r % 5 == 4 ? 0 : pick(1, 30));
        vmax = std::max(vmax, vis[r]);
      }
      const size_t nk = static_cast<size_t>(vmax);
      std::vector<float> p(std::max<size_t>(nk, 1) * ldp, 0.f);
      for (size_t j = 0; j < nk; ++j) {
        for (size_t r = 0; r < nr; ++r) p[j * ldp + r] = j < static_cast<size_t>(vis[r]) ? uniform(0.f, 1.f) : 0.f;
      }
      Guarded v(nk == 0 ? 0 : (nk - 1) * v_st + dv);
      fill(v.data(), v.size());
      std::vector<float> alpha(ldp);
      for (size_t r = 0; r < nr; ++r) alpha[r] = r % 3 == 0 ? 0.f : uniform(0.f, 1.f);
      std::vector<float> o(nr * ldo, kSentinel);
      for (size_t r = 0; r < nr; ++r) fill(o.data() + r * ldo, dv);
      std::vector<float> o0 = o;
      kt.attn_pv(p.data(), ldp, v.data(), v_st, vis.data(), alpha.data(), o.data(), ldo, nr, dv);
      for (size_t r = 0; r < nr; ++r) {
        for (size_t c = 0; c < ldo; ++c) {
          const float got = o[r * ldo + c];
          if (c >= dv) {
            if (got != kSentinel) fail("nr=%zu dv=%zu: o[%zu][%zu] written past dv", nr, dv, r, c);
            continue;
          }
          double want = static_cast<double>(alpha[r]) * o0[r * ldo + c];
          for (size_t j = 0; j < static_cast<size_t>(vis[r]); ++j) want += static_cast<double>(p[j * ldp + r]) * v[j * v_st + c];
          if (!close_to(got, want, 2e-6 * (1.0 + static_cast<double>(vis[r])))) {
            fail("nr=%zu dv=%zu: o[%zu][%zu] = %.9g, want %.9g", nr, dv, r, c, got, want);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Core drivers against float64 references.

void matmul_case(size_t m, size_t k, size_t n, bool ta, bool tb, bool bias_on, size_t batch, bool broadcast_b) {
  std::vector<float> a(batch * m * k), b((broadcast_b ? 1 : batch) * k * n), bias(n), c(batch * m * n + 7, kSentinel);
  fill(a.data(), a.size());
  fill(b.data(), b.size());
  fill(bias.data(), n);
  attn::MatmulArgs args;
  args.a = a.data();
  args.b = b.data();
  args.bias = bias_on ? bias.data() : nullptr;
  args.c = c.data();
  args.m = m, args.k = k, args.n = n;
  args.trans_a = ta, args.trans_b = tb;
  if (batch > 1) {
    args.batch_rank = 1;
    args.batch_dims[0] = batch;
    args.a_batch_strides[0] = m * k;
    args.b_batch_strides[0] = broadcast_b ? 0 : k * n;
  }
  const attn::Status st = attn::matmul(args);
  if (st != attn::Status::kOk) {
    fail("m=%zu k=%zu n=%zu: status %s", m, k, n, attn::status_message(st));
    return;
  }
  for (size_t bi = 0; bi < batch; ++bi) {
    const float* ab = a.data() + bi * m * k;
    const float* bb = b.data() + (broadcast_b ? 0 : bi * k * n);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        double want = bias_on ? bias[j] : 0.0;
        for (size_t p = 0; p < k; ++p) {
          want += static_cast<double>(ta ? ab[p * m + i] : ab[i * k + p]) * (tb ? bb[j * k + p] : bb[p * n + j]);
        }
        const float got = c[bi * m * n + i * n + j];
        if (!close_to(got, want, 2e-6 * (1.0 + static_cast<double>(k)))) {
          fail("m=%zu k=%zu n=%zu ta=%d tb=%d batch=%zu: C[%zu][%zu][%zu] = %.9g, want %.9g", m, k, n, ta, tb, batch, bi,
               i, j, got, want);
          return;
        }
      }
    }
  }
  for (size_t i = batch * m * n; i < c.size(); ++i) {
    if (c[i] != kSentinel) fail("m=%zu k=%zu n=%zu: written past C", m, k, n);
  }
}

void matmul_checks(bool large) {
  if (!large) {
    for (size_t m : {size_t{1}, size_t{5}, size_t{13}, size_t{29}}) {
      for (size_t n : {size_t{1}, size_t{7}, size_t{17}, size_t{33}, size_t{65}}) {
        for (size_t k : {size_t{0}, size_t{1}, size_t{9}, size_t{40}}) {
          for (int t = 0; t < 4; ++t) matmul_case(m, k, n, t & 1, t & 2, (m + n + t) % 2 == 0, 1, false);
        }
      }
    }
    matmul_case(6, 20, 9, false, true, true, 3, false);
    matmul_case(7, 11, 19, true, false, false, 4, true);
  } else {
    // Past the driver's cache blocks (kc 256, mc 144) and big enough to run on the thread team,
    // with packed A (wide) and packed B (tall).
    matmul_case(150, 300, 600, false, false, true, 1, false);
    matmul_case(301, 270, 50, true, false, false, 1, false);
    matmul_case(97, 260, 130, false, true, true, 2, false);
  }
}

// Float64 attention reference with ONNX semantics (see attn/attention.h), for contiguous
// (B, H, S, D) tensors.
struct AttnCase {
  size_t B = 1, Hq = 1, Hkv = 1, Sq = 1, Skv = 1, D = 8, Dv = 8;
  bool causal = false;
  std::vector<int32_t> offset, kv_valid;
  float softcap = 0.f;
  int mask = 0;  // 0 none, 1 float, 2 bool
  size_t mask_len = 0;
  int qk_mode = -1;
};

void attention_case(const AttnCase& c) {
  const size_t G = c.Hq / c.Hkv;
  std::vector<float> q(c.B * c.Hq * c.Sq * c.D), k(c.B * c.Hkv * c.Skv * c.D), v(c.B * c.Hkv * c.Skv * c.Dv);
  fill(q.data(), q.size());
  fill(k.data(), k.size());
  fill(v.data(), v.size());
  std::vector<float> maskf(c.Sq * c.mask_len);
  std::vector<uint8_t> masku(c.Sq * c.mask_len);
  for (size_t i = 0; i < maskf.size(); ++i) {
    maskf[i] = i % 7 == 0 ? -INFINITY : uniform(-2.f, 2.f);
    masku[i] = i % 5 != 0;
  }
  std::vector<float> y(c.B * c.Hq * c.Sq * c.Dv + 5, kSentinel);
  std::vector<float> qk(c.qk_mode >= 0 ? c.B * c.Hq * c.Sq * c.Skv : 0);
  attn::AttentionArgs a;
  a.B = c.B, a.Hq = c.Hq, a.Hkv = c.Hkv, a.Sq = c.Sq, a.Skv = c.Skv, a.D = c.D, a.Dv = c.Dv;
  a.q = attn::View4{q.data(), c.Hq * c.Sq * c.D, c.Sq * c.D, c.D};
  a.k = attn::View4{k.data(), c.Hkv * c.Skv * c.D, c.Skv * c.D, c.D};
  a.v = attn::View4{v.data(), c.Hkv * c.Skv * c.Dv, c.Skv * c.Dv, c.Dv};
  a.y = y.data();
  a.y_sb = c.Hq * c.Sq * c.Dv, a.y_sh = c.Sq * c.Dv, a.y_st = c.Dv;
  if (c.mask == 1) a.mask_f32 = maskf.data();
  if (c.mask == 2) a.mask_u8 = masku.data();
  a.mask_sq = c.mask_len, a.mask_len = c.mask_len;  // (Sq, mask_len), broadcast over B and H
  a.kv_valid = c.kv_valid.empty() ? nullptr : c.kv_valid.data();
  a.causal = c.causal;
  a.causal_offset = c.offset.empty() ? nullptr : c.offset.data();
  a.scale = 1.f / std::sqrt(static_cast<float>(c.D));
  a.softcap = c.softcap;
  a.qk_mode = c.qk_mode;
  a.qk_out = qk.empty() ? nullptr : qk.data();
  const attn::Status st = attn::attention(a);
  if (st != attn::Status::kOk) {
    fail("status %s", attn::status_message(st));
    return;
  }
  std::vector<double> sc(c.Skv);
  for (size_t b = 0; b < c.B; ++b) {
    for (size_t h = 0; h < c.Hq; ++h) {
      const size_t hk = h / G;
      for (size_t i = 0; i < c.Sq; ++i) {
        const float* qi = q.data() + ((b * c.Hq + h) * c.Sq + i) * c.D;
        double mx = -INFINITY;
        for (size_t j = 0; j < c.Skv; ++j) {
          const float* kj = k.data() + ((b * c.Hkv + hk) * c.Skv + j) * c.D;
          double s = 0.0;
          for (size_t p = 0; p < c.D; ++p) s += static_cast<double>(qi[p]) * kj[p];
          s *= a.scale;
          if (c.softcap > 0.f) s = c.softcap * std::tanh(s / c.softcap);
          bool visible = true;
          if (c.mask != 0) {
            if (j >= c.mask_len) {
              visible = false;
            } else if (c.mask == 1) {
              s += maskf[i * c.mask_len + j];
            } else if (!masku[i * c.mask_len + j]) {
              visible = false;
            }
          }
          if (!c.kv_valid.empty() && j >= static_cast<size_t>(c.kv_valid[b])) visible = false;
          if (c.causal && static_cast<int64_t>(j) > static_cast<int64_t>(i) + (c.offset.empty() ? 0 : c.offset[b])) {
            visible = false;
          }
          sc[j] = visible ? s : -INFINITY;
          mx = std::max(mx, sc[j]);
        }
        double l = 0.0;
        for (size_t j = 0; j < c.Skv; ++j) {
          sc[j] = mx == -INFINITY ? 0.0 : std::exp(sc[j] - mx);
          l += sc[j];
        }
        if (c.qk_mode == 3) {
          for (size_t j = 0; j < c.Skv; ++j) {
            const double want = l > 0 ? sc[j] / l : 0.0;
            const float got = qk[((b * c.Hq + h) * c.Sq + i) * c.Skv + j];
            if (!close_to(got, want, 2e-6)) fail("softmax out [%zu][%zu][%zu][%zu] = %.9g, want %.9g", b, h, i, j, got, want);
          }
        }
        for (size_t e = 0; e < c.Dv; ++e) {
          double want = 0.0;
          for (size_t j = 0; j < c.Skv; ++j) {
            if (sc[j] != 0.0) want += sc[j] * v[((b * c.Hkv + hk) * c.Skv + j) * c.Dv + e];
          }
          want = l > 0 ? want / l : 0.0;
          const float got = y[((b * c.Hq + h) * c.Sq + i) * c.Dv + e];
          if (!close_to(got, want, 2e-5)) {
            fail("B=%zu Hq=%zu Hkv=%zu Sq=%zu Skv=%zu D=%zu: y[%zu][%zu][%zu][%zu] = %.9g, want %.9g", c.B, c.Hq, c.Hkv,
                 c.Sq, c.Skv, c.D, b, h, i, e, got, want);
            return;
          }
        }
      }
    }
  }
  for (size_t i = c.B * c.Hq * c.Sq * c.Dv; i < y.size(); ++i) {
    if (y[i] != kSentinel) fail("written past y");
  }
}

void attention_prefill() {
  AttnCase c;
  c.B = 2, c.Hq = 4, c.Hkv = 2, c.Sq = 37, c.Skv = 37, c.D = 17, c.Dv = 24, c.causal = true;
  attention_case(c);  // causal, GQA, odd head dims
  c.Hq = 6, c.Hkv = 1, c.Sq = 20, c.Skv = 130, c.D = 64, c.Dv = 64, c.causal = false;
  attention_case(c);  // multi-query, keys past one 96-key step
  c.Hq = 2, c.Hkv = 2, c.Sq = 120, c.Skv = 200, c.D = 32, c.Dv = 13, c.causal = true, c.offset = {80, 50};
  attention_case(c);  // causal with a past (offset), several query tiles
}

void attention_masked() {
  AttnCase c;
  c.B = 2, c.Hq = 4, c.Hkv = 2, c.Sq = 24, c.Skv = 50, c.D = 16, c.Dv = 16;
  c.mask = 1, c.mask_len = 45, c.kv_valid = {50, 31}, c.softcap = 5.f;
  attention_case(c);  // float mask (with -inf), opset-24 short mask, nonpad lengths, softcap
  c.mask = 2, c.softcap = 0.f, c.causal = true, c.offset = {10, -5};
  attention_case(c);  // bool mask, causal; offset -5 leaves the first rows with no key (y = 0)
  c.mask = 0, c.kv_valid = {0, 3}, c.causal = false;
  attention_case(c);  // batch 0 sees nothing at all
}

void attention_decode() {
  AttnCase c;
  c.B = 1, c.Hq = 8, c.Hkv = 2, c.Sq = 1, c.Skv = 1100, c.D = 64, c.Dv = 64;
  attention_case(c);  // one group per kv head, keys split across chunks and merged
  c.Sq = 3, c.causal = true, c.offset = {1097};
  attention_case(c);  // a few new tokens against the cache
  c.B = 2, c.Sq = 2, c.Skv = 700, c.offset = {600, 100}, c.kv_valid = {699, 200};
  attention_case(c);  // uneven visible lengths across the batch
}

void attention_scores() {
  AttnCase c;
  c.B = 1, c.Hq = 2, c.Hkv = 1, c.Sq = 9, c.Skv = 21, c.D = 8, c.Dv = 5, c.causal = true, c.qk_mode = 3;
  attention_case(c);
  c.mask = 1, c.mask_len = 21, c.causal = false;
  attention_case(c);
}

// ---------------------------------------------------------------------------------------------
// Llama-family row ops (rmsnorm_row, silu, swiglu, rope_row) against float64, every tail length
// at a guard page, outputs fenced with sentinels; then their drivers (attn/llama_ops.h) threaded.

// Runs `kernel(y)` on an output of n floats with a sentinel on each side; fails if either moved.
template <typename F>
void fenced(size_t n, std::vector<float>& y, F&& kernel) {
  y.assign(n + 2, kSentinel);
  kernel(y.data() + 1);
  if (y[0] != kSentinel || y[n + 1] != kSentinel) fail("n=%zu: wrote outside the output", n);
  y.erase(y.begin());
  y.pop_back();
}

void rmsnorm_check(const KernelTable& kt) {
  std::vector<size_t> sizes;
  for (size_t n = 1; n <= 70; ++n) sizes.push_back(n);
  for (size_t n : {127, 128, 4096, 4099}) sizes.push_back(n);
  for (size_t n : sizes) {
    Guarded x(n), w(n);
    // Magnitudes from 1e-3 to 1e3 in one row, so a lost term or a float sum would show.
    for (size_t i = 0; i < n; ++i) x[i] = uniform() * std::pow(10.f, static_cast<float>(i % 7) - 3.f);
    fill(w.data(), n);
    const double eps = n % 2 ? 1e-6 : 1e-5;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
    const double r = 1.0 / std::sqrt(sum / static_cast<double>(n) + eps);
    std::vector<float> y;
    fenced(n, y, [&](float* out) { kt.rmsnorm_row(x.data(), w.data(), out, n, eps); });
    // r, x * r and w * (.) each rounded once: 1.5 ulp, 1.8e-7 relative.
    for (size_t i = 0; i < n; ++i) {
      const double want = w[i] * (x[i] * r);
      if (!close_to(y[i], want, 2e-7 * std::fabs(want) + 1e-30)) fail("n=%zu: y[%zu] = %.9g, want %.9g", n, i, y[i], want);
    }
    // In place (y = x) gives the same bits.
    kt.rmsnorm_row(x.data(), w.data(), x.data(), n, eps);
    if (std::memcmp(x.data(), y.data(), n * sizeof(float)) != 0) fail("n=%zu: in place differs", n);
  }
}

// silu's special values: IEEE results that follow from x / (1 + exp(-x)) in float.
const float kSiluSpecial[] = {-INFINITY, INFINITY, kNaN, 0.f, -0.f, -100.f, 100.f, -88.5f, -87.f, 88.5f, 20.f, -20.f};

void silu_check(const KernelTable& kt, bool gated) {
  for (size_t n = 0; n <= 45; ++n) {
    Guarded x(n), u(n);
    for (size_t i = 0; i < n; ++i) x[i] = i % 4 == 1 ? kSiluSpecial[(i + n) % 12] : uniform(-30.f, 30.f);
    for (size_t i = 0; i < n; ++i) u[i] = i % 5 == 2 ? 1.f : uniform(-4.f, 4.f);
    std::vector<float> y;
    fenced(n, y, [&](float* out) {
      if (gated) kt.swiglu(x.data(), u.data(), out, n);
      else kt.silu(x.data(), out, n);
    });
    for (size_t i = 0; i < n; ++i) {
      const double v = x[i], s = v / (1.0 + std::exp(-v)), want = gated ? static_cast<float>(s) * static_cast<double>(u[i]) : s;
      const float got = y[i];
      if (v == -INFINITY || std::isnan(v)) {
        if (!std::isnan(got)) fail("n=%zu: silu(%g) = %.9g, want NaN", n, v, got);
      } else if (!gated && v == -100.f) {
        if (!(got == 0.f && std::signbit(got))) fail("silu(-100) = %.9g, want -0", got);
      } else if (!gated && (v == 100.f || v == INFINITY)) {
        if (got != v) fail("silu(%g) = %.9g, want %g exactly", v, got, v);
      } else if (!gated && v == 0.f) {
        if (got != 0.f || std::signbit(got) != std::signbit(v)) fail("silu(%g) = %g", v, got);
      } else {
        // exp (1.65e-7), 1 + e, the division and (gated) the product: under 4e-7 relative, plus
        // 3.6e-37 * |up| absolute where -x passes a SIMD exp's overflow cut (88.376) before
        // float's (88.72) and silu is -0 instead of at most 3.6e-37 in magnitude.
        if (!close_to(got, want, 4e-7 * std::fabs(want) + 4e-37 * (gated ? std::fabs(u[i]) : 1.f))) fail("n=%zu: x=%.9g: %.9g, want %.9g", n, v, got, want);
      }
    }
    // In place (y = gate) gives the same bits.
    if (gated) kt.swiglu(x.data(), u.data(), x.data(), n);
    else kt.silu(x.data(), x.data(), n);
    if (std::memcmp(x.data(), y.data(), n * sizeof(float)) != 0) fail("n=%zu: in place differs", n);
  }
}

// rope_row against the scalar formula in float (two products, then the sum, no FMA: the test is
// compiled with -ffp-contract=off like the kernels), bit for bit, and against float64.
void rope_check(const KernelTable& kt) {
  for (size_t head_dim : {2, 4, 6, 8, 10, 16, 18, 32, 34, 64, 66, 128}) {
    for (size_t half : {head_dim / 2, head_dim / 2 - (head_dim >= 6 ? 2 : 1), size_t{1}}) {
      if (half == 0) continue;
      const size_t heads = 1 + head_dim % 3, n = heads * head_dim;
      Guarded x(n), c(half), sn(half);
      fill(x.data(), n);
      for (size_t i = 0; i < half; ++i) {
        const double angle = uniform(-10.f, 10.f);
        c[i] = static_cast<float>(std::cos(angle));
        sn[i] = static_cast<float>(std::sin(angle));
      }
      std::vector<float> y;
      fenced(n, y, [&](float* out) { kt.rope_row(x.data(), out, c.data(), sn.data(), heads, head_dim, half); });
      for (size_t h = 0; h < heads; ++h) {
        for (size_t j = 0; j < head_dim; ++j) {
          const float* xh = x.data() + h * head_dim;
          float want;
          double want64;
          if (j < half) {
            want = xh[j] * c[j] - xh[j + half] * sn[j];
            want64 = static_cast<double>(xh[j]) * c[j] - static_cast<double>(xh[j + half]) * sn[j];
          } else if (j < 2 * half) {
            want = xh[j] * c[j - half] + xh[j - half] * sn[j - half];
            want64 = static_cast<double>(xh[j]) * c[j - half] + static_cast<double>(xh[j - half]) * sn[j - half];
          } else {
            want = xh[j];
            want64 = xh[j];
          }
          const float got = y[h * head_dim + j];
          if (std::memcmp(&got, &want, 4) != 0) fail("D=%zu half=%zu: y[%zu][%zu] = %.9g, want %.9g", head_dim, half, h, j, got, want);
          if (!close_to(got, want64, 3e-7)) fail("D=%zu half=%zu: y[%zu][%zu] = %.9g, float64 %.9g", head_dim, half, h, j, got, want64);
        }
      }
      kt.rope_row(x.data(), x.data(), c.data(), sn.data(), heads, head_dim, half);
      if (std::memcmp(x.data(), y.data(), n * sizeof(float)) != 0) fail("D=%zu half=%zu: in place differs", head_dim, half);
    }
  }
}

// The drivers on sizes past their one-thread cut (256 KiB), against the same float64 formulas.
void llama_ops_core() {
  {
    const size_t rows = 130, width = 576;  // 300 KiB: threaded
    std::vector<float> x(rows * width), w(width), y(rows * width);
    fill(x.data(), x.size());
    fill(w.data(), width);
    if (attn::rms_norm(x.data(), w.data(), y.data(), rows, width, 1e-5) != attn::Status::kOk) fail("rms_norm status");
    for (size_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (size_t i = 0; i < width; ++i) sum += static_cast<double>(x[r * width + i]) * x[r * width + i];
      const double inv = 1.0 / std::sqrt(sum / width + 1e-5);
      for (size_t i = 0; i < width; ++i) {
        const double want = w[i] * (x[r * width + i] * inv);
        if (!close_to(y[r * width + i], want, 2e-7 * std::fabs(want) + 1e-30)) fail("rms_norm row %zu [%zu]", r, i);
      }
    }
  }
  {
    const size_t n = 100003;  // seven blocks of the elementwise ops, the last one short
    std::vector<float> g(n), u(n), y(n), s(n);
    for (size_t i = 0; i < n; ++i) g[i] = uniform(-12.f, 12.f), u[i] = uniform();
    if (attn::silu(g.data(), s.data(), n) != attn::Status::kOk || attn::swiglu(g.data(), u.data(), y.data(), n) != attn::Status::kOk) {
      fail("silu/swiglu status");
    }
    for (size_t i = 0; i < n; ++i) {
      const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i])));
      if (!close_to(s[i], want, 4e-7 * std::fabs(want))) fail("silu[%zu] = %.9g, want %.9g", i, s[i], want);
      if (!close_to(y[i], want * u[i], 5e-7 * std::fabs(want * u[i]))) fail("swiglu[%zu] = %.9g", i, y[i]);
    }
  }
  for (bool shared : {false, true}) {
    attn::RopeArgs a;
    a.B = 3, a.S = 37, a.H = 8, a.D = 72, a.rotary_dim = 48;  // 320 KiB: threaded
    const size_t half = a.rotary_dim / 2, row = a.H * a.D, size = a.B * a.S * row;
    std::vector<float> x(size), y(size), inv(half);
    std::vector<int32_t> pos(shared ? a.S : a.B * a.S);
    fill(x.data(), size);
    for (size_t i = 0; i < half; ++i) inv[i] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / a.rotary_dim));
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i % 5 == 0 ? 100000 + i : i * 7);
    a.x = x.data(), a.positions = pos.data(), a.shared_positions = shared, a.inv_freq = inv.data(), a.y = y.data();
    if (attn::rope(a) != attn::Status::kOk) fail("rope status");
    for (size_t r = 0; r < a.B * a.S; ++r) {
      const float p = static_cast<float>(pos[shared ? r % a.S : r]);
      for (size_t h = 0; h < a.H; ++h) {
        const float* xh = x.data() + r * row + h * a.D;
        const float* yh = y.data() + r * row + h * a.D;
        for (size_t i = 0; i < a.D; ++i) {
          double want = xh[i];
          if (i < 2 * half) {
            // The driver's angle: the float product of the float position and inv_freq.
            const size_t k = i % half;
            const double angle = static_cast<float>(p * inv[k]);
            const double other = i < half ? -static_cast<double>(xh[i + half]) : xh[i - half];
            want = xh[i] * std::cos(angle) + other * std::sin(angle);
          }
          if (!close_to(yh[i], want, 5e-7)) fail("rope shared=%d row %zu head %zu [%zu] = %.9g, want %.9g", shared, r, h, i, yh[i], want);
        }
      }
    }
  }
}


// ---------------------------------------------------------------------------------------------
// 16-bit floats (attn/half.h), the matrix-vector kernels (gemv_f32/f16/bf16) and their driver
// (attn::linear) against float64 on the same weights, decoded here from the formats' definitions
// rather than through half.h.

// IEEE binary16: (-1)^s 2^(e-15) (1 + m/2^10); e = 0: m 2^-24; e = 31: infinity (m = 0) or NaN.
double f16_ref(uint16_t h) {
  const int e = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (e == 0x1f) v = mant != 0 ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0) v = std::ldexp(mant, -24);
  else v = std::ldexp(1024 + mant, e - 25);
  return (h & 0x8000) != 0 ? -v : v;
}

// bfloat16: float32's sign and 8-bit exponent, 7 mantissa bits: 2^(e-127) (1 + m/2^7); e = 0:
// m 2^-133; e = 255: infinity or NaN.
double bf16_ref(uint16_t b) {
  const int e = (b >> 7) & 0xff, mant = b & 0x7f;
  double v;
  if (e == 0xff) v = mant != 0 ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0) v = std::ldexp(mant, -133);
  else v = std::ldexp(128 + mant, e - 134);
  return (b & 0x8000) != 0 ? -v : v;
}

double half_ref(attn::DType t, uint16_t bits) { return t == attn::DType::kF16 ? f16_ref(bits) : bf16_ref(bits); }

// f16_to_f32 / bf16_to_f32 for all 65536 patterns: the exact float (sign of zero included), NaN
// for NaN.
void half_conversion_check(attn::DType t) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float got = t == attn::DType::kF16 ? attn::f16_to_f32(bits) : attn::bf16_to_f32(bits);
    const double want = half_ref(t, bits);
    if (std::isnan(want)) {
      if (!std::isnan(got)) fail("0x%04x: %.9g, want NaN", h, got);
      continue;
    }
    const float wantf = static_cast<float>(want);  // exact: every value of both formats is a float
    if (static_cast<double>(wantf) != want) fail("0x%04x: reference %.17g not a float", h, want);
    if (std::memcmp(&got, &wantf, sizeof got) != 0) fail("0x%04x: %.9g, want %.9g", h, got, wantf);
  }
}

uint16_t narrow(attn::DType t, float x) { return t == attn::DType::kF16 ? attn::f32_to_f16(x) : attn::f32_to_bf16(x); }

// f32_to_f16 / f32_to_bf16 round to nearest, ties to even: every pattern converts back to itself
// (NaN to a NaN); at the midpoint between each finite value and the next (infinity counting as
// the next power of two) the even one wins, and one float either side goes to the nearer one.
void narrow_check(attn::DType t) {
  const bool f16 = t == attn::DType::kF16;
  const uint16_t inf = f16 ? 0x7c00 : 0x7f80;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const double value = half_ref(t, bits);
    const uint16_t back = narrow(t, static_cast<float>(value));
    if (std::isnan(value) ? !std::isnan(half_ref(t, back)) : back != bits) fail("0x%04x -> 0x%04x", h, back);
    if ((bits & 0x7fff) >= inf) continue;
    const uint16_t up = static_cast<uint16_t>(bits + 1);  // the next value away from zero
    const double next = (up & 0x7fff) == inf ? std::copysign(std::ldexp(1.0, f16 ? 16 : 128), value) : half_ref(t, up);
    const float mid = static_cast<float>((value + next) / 2);  // exact: a few bits past the format's
    const uint16_t even = (bits & 1) == 0 ? bits : up;
    if (narrow(t, mid) != even) fail("midpoint of 0x%04x: 0x%04x, want 0x%04x", h, narrow(t, mid), even);
    const float below = std::nextafter(mid, static_cast<float>(value)), above = std::nextafter(mid, static_cast<float>(next));
    if (narrow(t, below) != bits || narrow(t, above) != up) {
      fail("around the midpoint of 0x%04x: 0x%04x, 0x%04x", h, narrow(t, below), narrow(t, above));
    }
  }
}

// n 16-bit elements ending at a guard page (mem holds them).
uint16_t* guarded_bits(Guarded& mem, size_t n, attn::DType t) {
  uint16_t* x = reinterpret_cast<uint16_t*>(mem.data() + mem.size()) - n;
  for (size_t i = 0; i < n; ++i) x[i] = narrow(t, uniform());
  return x;
}

// attn_qk_rows_f16/bf16 and attn_pv_f16/bf16 (the decode tiles over a half-precision cache): bit
// for bit what attn_qk_rows / attn_pv give on the same values widened, for every head size tail,
// row count and visibility, the keys and values ending at a guard page and outputs fenced.
void half_tiles_check(const KernelTable& kt, attn::DType t) {
  const auto qk16 = t == attn::DType::kF16 ? kt.attn_qk_rows_f16 : kt.attn_qk_rows_bf16;
  const auto pv16 = t == attn::DType::kF16 ? kt.attn_pv_f16 : kt.attn_pv_bf16;
  for (size_t d : {size_t{1}, size_t{3}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{17}, size_t{40}, size_t{64}, size_t{130}}) {
    for (size_t nr = 1; nr <= 9; ++nr) {
      const size_t nk = 1 + (d * 7 + nr * 5) % 37, k_st = d + 3, q_st = d + 1, lds = 16;
      Guarded mem(((nk - 1) * k_st + d + 1) / 2);
      const uint16_t* k16 = guarded_bits(mem, (nk - 1) * k_st + d, t);
      std::vector<float> kw((nk - 1) * k_st + d), q(nr * q_st);
      for (size_t i = 0; i < kw.size(); ++i) kw[i] = static_cast<float>(half_ref(t, k16[i]));
      fill(q.data(), q.size());
      std::vector<float> got((nk + 1) * lds, kSentinel), want = got;
      qk16(k16, k_st, nk, q.data(), q_st, nr, d, got.data(), lds);
      kt.attn_qk_rows(kw.data(), k_st, nk, q.data(), q_st, nr, d, want.data(), lds);
      if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) != 0) fail("qk_rows d=%zu nr=%zu nk=%zu", d, nr, nk);
    }
  }
  for (size_t nr : {size_t{1}, size_t{4}, size_t{6}, size_t{7}, size_t{13}}) {
    for (size_t dv = 1; dv <= 70; dv += (dv < 36 ? 1 : 11)) {
      const size_t ldp = (nr + 15) / 16 * 16, ldo = dv + 3, v_st = dv + 2;
      std::vector<int32_t> vis(ldp, 0);
      int32_t vmax = 1;
      for (size_t r = 0; r < nr; ++r) vmax = std::max(vmax, vis[r] = static_cast<int32_t>(r % 5 == 4 ? 0 : pick(1, 30)));
      const size_t nk = static_cast<size_t>(vmax);
      std::vector<float> pr(nk * ldp, 0.f), alpha(ldp);
      for (size_t j = 0; j < nk; ++j) {
        for (size_t r = 0; r < nr; ++r) pr[j * ldp + r] = j < static_cast<size_t>(vis[r]) ? uniform(0.f, 1.f) : 0.f;
      }
      for (size_t r = 0; r < nr; ++r) alpha[r] = uniform(0.f, 1.f);
      Guarded mem(((nk - 1) * v_st + dv + 1) / 2);
      const uint16_t* v16 = guarded_bits(mem, (nk - 1) * v_st + dv, t);
      std::vector<float> vw((nk - 1) * v_st + dv);
      for (size_t i = 0; i < vw.size(); ++i) vw[i] = static_cast<float>(half_ref(t, v16[i]));
      std::vector<float> got(nr * ldo, kSentinel);
      for (size_t r = 0; r < nr; ++r) fill(got.data() + r * ldo, dv);
      std::vector<float> want = got;
      pv16(pr.data(), ldp, v16, v_st, vis.data(), alpha.data(), got.data(), ldo, nr, dv);
      kt.attn_pv(pr.data(), ldp, vw.data(), v_st, vis.data(), alpha.data(), want.data(), ldo, nr, dv);
      if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) != 0) fail("pv nr=%zu dv=%zu nk=%zu", nr, dv, nk);
    }
  }
}

// A half-precision attn::KVCache: write() narrows as above and read() widens back exactly; then
// attention over the cache in place (decode, split decode, prefill, a later first key, the score
// output) gives bit for bit what float32 attention gives on those widened values, so storage is
// the only rounding a 16-bit cache adds.
void half_cache_check(attn::DType t) {
  const size_t B = 2, Hkv = 2, G = 4, Hq = Hkv * G, D = 40, max_len = 700;
  attn::KVCache cache;
  if (cache.init(B, Hkv, D, max_len, t) != attn::Status::kOk || cache.dtype() != t || cache.bytes() != 2 * B * Hkv * D * max_len * 2) {
    fail("init");
    return;
  }
  // Written in two calls from [B, S, Hkv, D] projections, as a layer writes them.
  const size_t len = 650;
  std::vector<float> k(B * len * Hkv * D), v(k.size());
  fill(k.data(), k.size());
  fill(v.data(), v.size());
  for (size_t i = 0; i < k.size(); i += 97) k[i] *= 3000.f;  // some keys past bf16/f16 precision
  for (size_t pos : {size_t{0}, size_t{600}}) {
    const size_t S = pos == 0 ? 600 : len - 600;
    const attn::View4 kv{k.data() + pos * Hkv * D, len * Hkv * D, D, Hkv * D};
    const attn::View4 vv{v.data() + pos * Hkv * D, len * Hkv * D, D, Hkv * D};
    if (cache.write(pos, kv, vv, S) != attn::Status::kOk || cache.set_length(pos + S) != attn::Status::kOk) fail("write");
  }
  // What the cache should hold, widened: (B, Hkv, len, D).
  std::vector<float> kw(B * Hkv * len * D), vw(kw.size()), kr(kw.size()), vr(kw.size());
  for (size_t b = 0; b < B; ++b) {
    for (size_t h = 0; h < Hkv; ++h) {
      for (size_t j = 0; j < len; ++j) {
        for (size_t d = 0; d < D; ++d) {
          const size_t from = ((b * len + j) * Hkv + h) * D + d, to = ((b * Hkv + h) * len + j) * D + d;
          kw[to] = static_cast<float>(half_ref(t, narrow(t, k[from])));
          vw[to] = static_cast<float>(half_ref(t, narrow(t, v[from])));
        }
      }
    }
  }
  cache.read(kr.data(), vr.data());
  if (std::memcmp(kr.data(), kw.data(), kw.size() * sizeof(float)) != 0 ||
      std::memcmp(vr.data(), vw.data(), vw.size() * sizeof(float)) != 0) {
    fail("read() differs from the narrowed-then-widened input");
  }
  struct Case { size_t Sq, first; int qk_mode; };
  for (const Case c : {Case{1, 0, -1}, Case{3, 0, -1}, Case{1, 130, -1}, Case{40, 0, -1}, Case{40, 7, -1}, Case{2, 0, 3}}) {
    const size_t Skv = len - c.first;
    std::vector<float> q(B * Hq * c.Sq * D), y16(B * Hq * c.Sq * D), y32(y16.size());
    std::vector<float> p16(c.qk_mode >= 0 ? B * Hq * c.Sq * Skv : 0), p32(p16.size());
    fill(q.data(), q.size());
    std::vector<int32_t> offset(B, static_cast<int32_t>(Skv - c.Sq));
    attn::AttentionArgs a;
    a.B = B, a.Hq = Hq, a.Hkv = Hkv, a.Sq = c.Sq, a.Skv = Skv, a.D = a.Dv = D;
    a.q = attn::View4{q.data(), Hq * c.Sq * D, c.Sq * D, D};
    a.y_sb = Hq * c.Sq * D, a.y_sh = c.Sq * D, a.y_st = D;
    a.causal = true;
    a.causal_offset = offset.data();
    a.scale = 0.125f;
    a.qk_mode = c.qk_mode;
    attn::AttentionArgs half = a, full = a;
    cache.attend(half, c.first);
    half.y = y16.data();
    half.qk_out = p16.empty() ? nullptr : p16.data();
    full.k = attn::View4{kw.data() + c.first * D, Hkv * len * D, len * D, D};
    full.v = attn::View4{vw.data() + c.first * D, Hkv * len * D, len * D, D};
    full.y = y32.data();
    full.qk_out = p32.empty() ? nullptr : p32.data();
    if (attn::attention(half) != attn::Status::kOk || attn::attention(full) != attn::Status::kOk) {
      fail("attention status");
      continue;
    }
    if (std::memcmp(y16.data(), y32.data(), y16.size() * sizeof(float)) != 0 ||
        std::memcmp(p16.data(), p32.data(), p16.size() * sizeof(float)) != 0) {
      fail("Sq=%zu first=%zu qk_mode=%d: attention over the cache differs from float32 attention", c.Sq, c.first, c.qk_mode);
    }
  }
  attn::AttentionArgs bad;
  bad.B = bad.Hq = bad.Hkv = bad.Sq = bad.Skv = 1, bad.D = bad.Dv = 4;
  std::vector<float> q(4), y(4);
  bad.q = attn::View4{q.data(), 4, 4, 4};
  bad.y = y.data();
  bad.kv_dtype = t;  // no k16 / v16
  if (attn::attention(bad) != attn::Status::kBadShape) fail("attention accepted 16-bit keys with no data");
}

// KernelTable::cvt_f16_f32 / cvt_bf16_f32 (a prefill widens blocks of 16-bit W with them): every
// pattern in one call from an odd address, as half_conversion_check expects them; then every length
// 0..40 with the input ending at the guard page and the output fenced.
void cvt_check(const KernelTable& kt, attn::DType t) {
  const auto cvt = t == attn::DType::kF16 ? kt.cvt_f16_f32 : kt.cvt_bf16_f32;
  auto expect = [&](const uint16_t* x, const float* y, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const double want = half_ref(t, x[i]);
      const float wantf = static_cast<float>(want);
      if (std::isnan(want) ? !std::isnan(y[i]) : std::memcmp(&y[i], &wantf, sizeof wantf) != 0) {
        fail("n=%zu: 0x%04x -> %.9g, want %.9g", n, x[i], y[i], want);
      }
    }
  };
  std::vector<uint16_t> all(65536 + 1);
  for (size_t i = 0; i < 65536; ++i) all[i + 1] = static_cast<uint16_t>(i);
  std::vector<float> y;
  fenced(65536, y, [&](float* out) { cvt(all.data() + 1, out, 65536); });
  expect(all.data() + 1, y.data(), 65536);
  for (size_t n = 0; n <= 40; ++n) {
    Guarded mem((n + 1) / 2);
    uint16_t* x = reinterpret_cast<uint16_t*>(mem.data() + mem.size()) - n;  // ends at the page
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<uint16_t>(pick(0, 0xffff));
    fenced(n, y, [&](float* out) { cvt(x, out, n); });
    expect(x, y.data(), n);
  }
}

// Rows of W as a kernel reads them: n rows of k weights ldw apart, the last one ending right at the
// guard page, the gaps between rows NaN (a kernel may read neither into a result); `val` holds the
// exact values row-major [n, k]. Weights are random in about (-2, 2) with every exponent of that
// range, a few signed zeros and (F16) subnormals, so the conversions meet more than normal values.
class GemvWeights {
 public:
  GemvWeights(attn::DType t, size_t n, size_t k, size_t ldw)
      : count_((n - 1) * ldw + k),
        mem_((count_ * (t == attn::DType::kF32 ? 4 : 2) + 3) / 4),
        val(n * k) {
    const bool f32 = t == attn::DType::kF32;
    float* wf = mem_.data() + mem_.size() - count_;                               // F32: ends at the page
    uint16_t* wh = reinterpret_cast<uint16_t*>(mem_.data() + mem_.size()) - count_;  // 16-bit: likewise
    ptr_ = f32 ? static_cast<const void*>(wf) : static_cast<const void*>(wh);
    const uint16_t nan16 = t == attn::DType::kF16 ? 0x7e00 : 0x7fc0;
    for (size_t i = 0; i < count_; ++i) {
      const size_t j = i / ldw, p = i % ldw;
      if (p >= k) {
        if (f32) wf[i] = kNaN;
        else wh[i] = nan16;
        continue;
      }
      double v;
      if (f32) {
        wf[i] = pick(0, 30) == 0 ? 0.f : uniform(-2.f, 2.f);
        v = wf[i];
      } else {
        const uint16_t sign = static_cast<uint16_t>(pick(0, 1) << 15);
        uint16_t bits;
        if (pick(0, 30) == 0) {
          bits = sign;  // +-0
        } else if (t == attn::DType::kF16) {
          const size_t e = pick(0, 20) == 0 ? 0 : pick(6, 15);  // subnormals, 2^-9 .. 2^0
          bits = static_cast<uint16_t>(sign | (e << 10) | pick(0, 0x3ff));
        } else {
          bits = static_cast<uint16_t>(sign | (pick(118, 127) << 7) | pick(0, 0x7f));
        }
        wh[i] = bits;
        v = half_ref(t, bits);
      }
      val[j * k + p] = v;
    }
  }
  const void* data() const { return ptr_; }

 private:
  size_t count_;
  Guarded mem_;
  const void* ptr_ = nullptr;

 public:
  std::vector<double> val;
};

attn::GemvFn gemv_of(const KernelTable& kt, attn::DType t) {
  return t == attn::DType::kF16 ? kt.gemv_f16 : t == attn::DType::kBF16 ? kt.gemv_bf16 : kt.gemv_f32;
}
const char* dtype_name(attn::DType t) { return t == attn::DType::kF16 ? "f16" : t == attn::DType::kBF16 ? "bf16" : "f32"; }

// Float32 accumulation of k products: |error| <= C k u sum_p |w_p x_p| with u = 2^-24, the unit
// roundoff. Recursive summation is bounded by ~k u (gamma_k); lanes and FMA only lower it. Measured
// worst |error| / (k u sum |w x|) on scalar, avx2 and avx512: 0.9998 at k = 1 (one rounding of one
// product, the bound's own worst case), 0.44 at k = 8, 0.34 at k = 15, 0.21 at k = 17, 0.045 at
// k = 100, 0.006 at k = 773; through attn::linear (k + 1 terms with the bias) 0.08. C = 2 sits 2x
// above the k = 1 worst and far above every longer sum, while a dropped, doubled or misconverted
// product (an error ~ sum |w x| / k, a ratio ~ 1 / (k^2 u) >= 28 for k <= 773) fails.
constexpr double kGemvC = 2.0;
constexpr double kU32 = 1.0 / 16777216.0;
double g_gemv_worst = 0.0;

// Compares float32 `got` with the float64 sum `want` of products of total magnitude `mag`.
bool gemv_close(float got, double want, double mag, size_t k) {
  const double err = std::fabs(static_cast<double>(got) - want), scale = static_cast<double>(k) * kU32 * mag;
  if (!(err <= kGemvC * scale)) return false;  // NaN fails too
  if (scale > 0.0) g_gemv_worst = std::max(g_gemv_worst, err / scale);
  return true;
}

// y[i * ldy + j] = W row j . x row i, y fenced: a row of sentinels above and below, sentinels
// between rows (ldy > n) that must survive; x rows ldx apart, the last ending at the guard page.
void gemv_case(const KernelTable& kt, attn::DType t, size_t n, size_t m, size_t k, size_t ldw, size_t ldx, size_t ldy) {
  GemvWeights w(t, n, k, ldw);
  Guarded x((m - 1) * ldx + k);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % ldx < k ? uniform() : kNaN;
  std::vector<float> y((m + 2) * ldy, kSentinel);
  float* y0 = y.data() + ldy;
  gemv_of(kt, t)(w.data(), ldw, n, x.data(), ldx, m, k, y0, ldy);
  for (size_t r = 0; r < m + 2; ++r) {
    for (size_t j = 0; j < ldy; ++j) {
      const float got = y[r * ldy + j];
      if (r == 0 || r > m || j >= n) {
        if (got != kSentinel) fail("%s n=%zu m=%zu k=%zu: y[%zd][%zu] written outside", dtype_name(t), n, m, k,
                                   static_cast<ptrdiff_t>(r) - 1, j);
        continue;
      }
      const size_t i = r - 1;
      double want = 0.0, mag = 0.0;
      for (size_t p = 0; p < k; ++p) {
        const double prod = w.val[j * k + p] * x[i * ldx + p];
        want += prod;
        mag += std::fabs(prod);
      }
      if (!gemv_close(got, want, mag, k)) {
        fail("%s n=%zu m=%zu k=%zu ldw=%zu ldx=%zu ldy=%zu: y[%zu][%zu] = %.9g, want %.9g (C k u sum|wx| = %.3g)",
             dtype_name(t), n, m, k, ldw, ldx, ldy, i, j, got, want, kGemvC * k * kU32 * mag);
      }
    }
  }
  // A row of a batch gets the bits it gets alone (batched generation gives the tokens of one by one).
  std::vector<float> alone(n);
  for (size_t i = 0; m > 1 && i < m; ++i) {
    gemv_of(kt, t)(w.data(), ldw, n, x.data() + i * ldx, ldx, 1, k, alone.data(), n);
    if (std::memcmp(alone.data(), y0 + i * ldy, n * sizeof(float)) != 0) {
      fail("%s n=%zu m=%zu k=%zu: row %zu of the batch differs from the row alone", dtype_name(t), n, m, k, i);
      return;
    }
  }
}

// n below, at and past the W row groups of a batch (2 or 3 rows) and their multiples; m = 1..9 (the
// 2- and 4-row x tiles and their 1-3 tails) and 33;
// k below, at and past every vector width (4, 8, 16) with and without a tail; leading dimensions
// tight or padded.
void gemv_check(const KernelTable& kt, attn::DType t) {
  g_gemv_worst = 0.0;
  const size_t ks[] = {1, 4, 7, 8, 15, 16, 17, 33, 100, 773};
  const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 13};
  size_t c = 0;
  for (size_t k : ks) {
    for (size_t m = 1; m <= 10; ++m) {
      const size_t mm = m == 10 ? 33 : m;
      for (size_t n : ns) {
        if (k == 773 && (n + mm) % 3 != 0) continue;  // a third of the large-k cases (qemu time)
        ++c;
        const size_t ldw = k + (c % 3 == 0 ? 0 : c % 3 == 1 ? 1 : 9);
        const size_t ldx = k + (c % 4 == 0 ? 0 : c % 4);
        const size_t ldy = n + 1 + c % 5;  // always a gap: sentinels between rows
        gemv_case(kt, t, n, mm, k, ldw, ldx, ldy);
      }
    }
  }
  gemv_case(kt, t, 37, 33, 768 + 5, 768 + 5, 768 + 5, 40);
  gemv_case(kt, t, 33, 9, 768 + 5, 768 + 21, 768 + 7, 35);
  if (verbose()) std::fprintf(stderr, "  gemv_%s: worst |err| / (k u sum|wx|) = %.4f (bound %.2f)\n", dtype_name(t), g_gemv_worst, kGemvC);
}

// The in-register conversions on every 16-bit pattern: row j of W is zero except pattern j at
// column j % 19 (the vector body of every set and the scalar tail past 16), x is all ones, so
// y[j] is the pattern's value exactly (0 + w; -0 comes out +0), NaN for NaN.
void gemv_convert_check(const KernelTable& kt, attn::DType t) {
  const size_t n = 65536, k = 19;
  std::vector<uint16_t> w(n * k, 0);
  for (size_t j = 0; j < n; ++j) w[j * k + j % k] = static_cast<uint16_t>(j);
  std::vector<float> x(2 * k, 1.f), y(2 * n, kSentinel);
  gemv_of(kt, t)(w.data(), k, n, x.data(), k, 2, k, y.data(), n);
  for (size_t r = 0; r < 2; ++r) {
    for (size_t j = 0; j < n; ++j) {
      const double want = half_ref(t, static_cast<uint16_t>(j));
      const float got = y[r * n + j];
      if (std::isnan(want) ? !std::isnan(got) : static_cast<double>(got) != want) {
        fail("%s 0x%04zx (column %zu): %.9g, want %.9g", dtype_name(t), j, j % k, got, want);
      }
    }
  }
}

// attn::linear with bias: y = x W^T + b, every weight type, m = 1, 8, 9 (past kGemvMaxRows: F32
// goes to the packed GEMM when rows are tight) and 40 (past the driver's 32-row chunks); sizes
// past the one-thread cut (256 KiB of W) and a k that makes the driver walk W in several blocks.
void linear_case(attn::DType t, size_t m, size_t n, size_t k, size_t ldx, size_t ldy) {
  GemvWeights w(t, n, k, k);
  std::vector<float> x(m * ldx, kNaN), bias(n);
  for (size_t i = 0; i < m; ++i) fill(x.data() + i * ldx, k);
  fill(bias.data(), n);
  std::vector<float> y(m * ldy + 3, kSentinel);
  attn::LinearArgs a;
  a.x = x.data(), a.ldx = ldx, a.w = w.data(), a.w_dtype = t, a.bias = bias.data(), a.y = y.data(), a.ldy = ldy;
  a.m = m, a.n = n, a.k = k;
  const attn::Status st = attn::linear(a);
  if (st != attn::Status::kOk) {
    fail("%s m=%zu n=%zu k=%zu: status %s", dtype_name(t), m, n, k, attn::status_message(st));
    return;
  }
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t r = i / ldy, j = i % ldy;
    const float got = y[i];
    if (r >= m || j >= n) {
      if (got != kSentinel) fail("%s m=%zu n=%zu k=%zu: y[%zu] written outside", dtype_name(t), m, n, k, i);
      continue;
    }
    double want = bias[j], mag = std::fabs(static_cast<double>(bias[j]));
    for (size_t p = 0; p < k; ++p) {
      const double prod = w.val[j * k + p] * x[r * ldx + p];
      want += prod;
      mag += std::fabs(prod);
    }
    if (!gemv_close(got, want, mag, k + 1)) {
      fail("%s m=%zu n=%zu k=%zu ldx=%zu ldy=%zu: y[%zu][%zu] = %.9g, want %.9g", dtype_name(t), m, n, k, ldx, ldy, r,
           j, got, want);
      return;
    }
  }
  // Up to kGemvMaxRows rows, each row of the batch has the bits of the row alone.
  std::vector<float> alone(n);
  for (size_t i = 0; m > 1 && m <= attn::kGemvMaxRows && i < m; ++i) {
    a.x = x.data() + i * ldx, a.y = alone.data(), a.ldy = n, a.m = 1;
    if (attn::linear(a) != attn::Status::kOk || std::memcmp(alone.data(), y.data() + i * ldy, n * sizeof(float)) != 0) {
      fail("%s m=%zu n=%zu k=%zu: row %zu of the batch differs from the row alone", dtype_name(t), m, n, k, i);
      return;
    }
  }
}

void linear_checks() {
  g_gemv_worst = 0.0;
  for (attn::DType t : {attn::DType::kF32, attn::DType::kF16, attn::DType::kBF16}) {
    for (size_t m : {size_t{1}, size_t{8}, size_t{9}, size_t{40}}) {
      linear_case(t, m, 300, 520, 520, 300);     // threaded; F32 m = 9, 40 on the GEMM
      linear_case(t, m, 37, 45, 48, 42);         // one thread, padded rows
    }
    linear_case(t, 40, 300, 2000, 2001, 302);    // W in blocks of 32-65 rows, x in chunks of 32
    linear_case(t, 12, 2100, 70, 70, 2100);      // past the GEMM's 2048-column block (16-bit W packed per block)
  }
  if (verbose()) std::fprintf(stderr, "  linear: worst |err| / ((k+1) u sum|wx|) = %.4f (bound %.2f)\n", g_gemv_worst, kGemvC);
}


// The parallel construct under the drivers (attn/threads.h: OpenMP or the std::thread pool):
// every iteration of every loop runs exactly once, loops see what earlier loops wrote (the
// barrier), a nested region runs alone, and two callers at once take turns.
void team_checks() {
  auto one_caller = [](int seed, int rounds, int* errors) {
    std::vector<int> hits, order;
    for (int it = 0; it < rounds; ++it) {
      const int threads = 1 + (it + seed) % 4;
      const size_t n = static_cast<size_t>((it * 7 + seed) % 97), chunk = 1 + static_cast<size_t>(it % 5);
      hits.assign(n, 0);
      order.assign(n, 0);
      std::atomic<int> nested_ok{1};
      attn::parallel(threads, [&](attn::Team& team) {
        team.for_dynamic(n, chunk, [&](size_t i) { hits[i] += 1; });
        // After the barrier every hit of the first loop is visible.
        team.for_static(n, [&](size_t i) { order[i] = hits[i] == 1 ? 1 : 0; });
        if (team.size() > 1 && !attn::in_parallel()) nested_ok = 0;
        attn::parallel(3, [&](attn::Team& inner) {
          if (team.size() > 1 && inner.size() != 1) nested_ok = 0;
        });
      });
      for (size_t i = 0; i < n; ++i) {
        if (hits[i] != 1 || order[i] != 1) ++*errors;
      }
      if (!nested_ok) ++*errors;
    }
  };
  int e1 = 0, e2 = 0;
  std::thread other(one_caller, 1, 300, &e2);
  one_caller(0, 300, &e1);
  other.join();
  if (e1 + e2 != 0) fail("%d wrong iterations or nesting (threading %s)", e1 + e2, attn::threading_name());
  if (attn::in_parallel()) fail("in_parallel() outside any region");
}

// ---------------------------------------------------------------------------------------------

// A kernel that reads a guard page (or crashes otherwise) ends the run: the summary line still
// names the set and the check, and the exit status is non-zero.
const char* g_isa = "";
const char* g_how = "";
int g_passed = 0;

void on_crash(int sig) {
  char line[256];
  int n = std::snprintf(line, sizeof(line), "isa %s: CRASH (signal %d) in %s\n", g_isa, sig,
                        g_check != nullptr ? g_check->name : "setup");
  if (n > 0) (void)!write(STDERR_FILENO, line, static_cast<size_t>(n));
  n = std::snprintf(line, sizeof(line), "isa %s (%s): %d passed, 1 failed\n", g_isa, g_how, g_passed);
  if (n > 0) (void)!write(STDOUT_FILENO, line, static_cast<size_t>(n));
  _exit(1);
}

struct NamedCheck {
  const char* name;
  std::function<void(const KernelTable&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: isa_test NAME [--how=HOW]   (NAME: scalar, avx2, avx512, neon)\n");
    return 2;
  }
  const std::string name = argv[1];
  std::string how = "native";
#if defined(ATTN_AVX512_SIMDE)
  if (name == "avx512") how = "simde";
#endif
  for (int i = 2; i < argc; ++i) {
    if (std::strncmp(argv[i], "--how=", 6) == 0) how = argv[i] + 6;
  }
  // The set is chosen here, not capped by the caller's environment.
  unsetenv("NODE_ATTENTION_SIMD");

  if (!attn::select_isa(name.c_str()) || name != attn::kernels().isa) {
    size_t count = 0;
    const char* const* names = attn::supported_isas(&count);
    std::string have;
    for (size_t i = 0; i < count; ++i) have += std::string(i ? ", " : "") + names[i];
    std::fprintf(stderr, "isa_test: kernel set '%s' is not available in this build on this CPU (have: %s)\n",
                 name.c_str(), have.c_str());
    std::printf("isa %s (%s): 0 passed, 1 failed\n", name.c_str(), how.c_str());
    return 1;
  }

  const NamedCheck checks[] = {
      {"gemm packed A", [](const KernelTable& kt) { gemm_sweep(kt, ALayout::kPacked, false); }},
      {"gemm row-major A", [](const KernelTable& kt) { gemm_sweep(kt, ALayout::kRowMajor, false); }},
      {"gemm transposed A", [](const KernelTable& kt) { gemm_sweep(kt, ALayout::kTransposed, false); }},
      {"gemm accumulate", [](const KernelTable& kt) { gemm_sweep(kt, ALayout::kPacked, true); }},
      {"gemm accumulate in place", [](const KernelTable& kt) { gemm_sweep(kt, ALayout::kRowMajor, true); }},
      {"vec_dot", [](const KernelTable& kt) { vec_checks(kt, 0); }},
      {"vec_axpy", [](const KernelTable& kt) { vec_checks(kt, 1); }},
      {"vec_scale", [](const KernelTable& kt) { vec_checks(kt, 2); }},
      {"vec_max", [](const KernelTable& kt) { vec_checks(kt, 3); }},
      {"exp sweep", [](const KernelTable& kt) { exp_sweep(kt); }},
      {"vec_expsum special values", [](const KernelTable& kt) { expsum_special(kt); }},
      {"vec_softcap", [](const KernelTable& kt) { softcap_check(kt); }},
      {"softmax step", [](const KernelTable& kt) { softmax_checks(kt, 0); }},
      {"softmax fully masked rows", [](const KernelTable& kt) { softmax_checks(kt, 1); }},
      {"softmax -inf scores", [](const KernelTable& kt) { softmax_checks(kt, 2); }},
      {"softmax huge logits", [](const KernelTable& kt) { softmax_checks(kt, 3); }},
      {"qk_panel", [](const KernelTable& kt) { qk_panel_check(kt); }},
      {"qk_rows (decode)", [](const KernelTable& kt) { qk_rows_check(kt); }},
      {"pv with visibility limits", [](const KernelTable& kt) { pv_check(kt); }},
      {"qk_rows / pv over F16 keys and values", [](const KernelTable& kt) { half_tiles_check(kt, attn::DType::kF16); }},
      {"qk_rows / pv over BF16 keys and values", [](const KernelTable& kt) { half_tiles_check(kt, attn::DType::kBF16); }},
      {"rmsnorm_row", [](const KernelTable& kt) { rmsnorm_check(kt); }},
      {"silu", [](const KernelTable& kt) { silu_check(kt, false); }},
      {"swiglu", [](const KernelTable& kt) { silu_check(kt, true); }},
      {"rope_row", [](const KernelTable& kt) { rope_check(kt); }},
      {"f16_to_f32 every pattern", [](const KernelTable&) { half_conversion_check(attn::DType::kF16); }},
      {"bf16_to_f32 every pattern", [](const KernelTable&) { half_conversion_check(attn::DType::kBF16); }},
      {"f32_to_f16 rounds to nearest even", [](const KernelTable&) { narrow_check(attn::DType::kF16); }},
      {"f32_to_bf16 rounds to nearest even", [](const KernelTable&) { narrow_check(attn::DType::kBF16); }},
      {"cvt_f16_f32", [](const KernelTable& kt) { cvt_check(kt, attn::DType::kF16); }},
      {"cvt_bf16_f32", [](const KernelTable& kt) { cvt_check(kt, attn::DType::kBF16); }},
      {"gemv_f32", [](const KernelTable& kt) { gemv_check(kt, attn::DType::kF32); }},
      {"gemv_f16", [](const KernelTable& kt) { gemv_check(kt, attn::DType::kF16); }},
      {"gemv_bf16", [](const KernelTable& kt) { gemv_check(kt, attn::DType::kBF16); }},
      {"gemv_f16 converts every pattern", [](const KernelTable& kt) { gemv_convert_check(kt, attn::DType::kF16); }},
      {"gemv_bf16 converts every pattern", [](const KernelTable& kt) { gemv_convert_check(kt, attn::DType::kBF16); }},
      {"thread team loops", [](const KernelTable&) { team_checks(); }},
      {"core matmul", [](const KernelTable&) { matmul_checks(false); }},
      {"core matmul blocked, threaded", [](const KernelTable&) { matmul_checks(true); }},
      {"core attention prefill (causal, GQA)", [](const KernelTable&) { attention_prefill(); }},
      {"core attention masks", [](const KernelTable&) { attention_masked(); }},
      {"core attention decode split", [](const KernelTable&) { attention_decode(); }},
      {"core attention score output", [](const KernelTable&) { attention_scores(); }},
      {"core rms_norm, silu, swiglu, rope (threaded)", [](const KernelTable&) { llama_ops_core(); }},
      {"core linear (bias, F32/F16/BF16, threaded)", [](const KernelTable&) { linear_checks(); }},
      {"core F16 KV cache: write, read, attention", [](const KernelTable&) { half_cache_check(attn::DType::kF16); }},
      {"core BF16 KV cache: write, read, attention", [](const KernelTable&) { half_cache_check(attn::DType::kBF16); }},
  };

  g_isa = name.c_str();
  g_how = how.c_str();
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGILL, on_crash);
  signal(SIGFPE, on_crash);
  // Two threads at least, so the drivers' team paths run (OpenMP or the std::thread pool).
  attn::set_num_threads(std::max(2, attn::num_threads()));
  const KernelTable& kt = attn::kernels();
  int passed = 0, failed = 0;
  for (const NamedCheck& c : checks) {
    Check state{c.name};
    g_check = &state;
    const auto t0 = std::chrono::steady_clock::now();
    c.run(kt);
    if (verbose()) {
      std::fprintf(stderr, "  %-40s %6.3f s\n", c.name,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (state.errors == 0) {
      g_passed = ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "isa %s: FAIL %s (%d mismatches)\n", name.c_str(), c.name, state.errors);
    }
  }
  std::printf("isa %s (%s): %d passed, %d failed\n", name.c_str(), how.c_str(), passed, failed);
  return failed == 0 ? 0 : 1;
}
