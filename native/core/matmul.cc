// Batched GEMM driver: cache blocking, packing and threads around the kernel table's MR x NR
// microkernel. No SIMD code here (it is compiled for baseline x86-64); the kernel does the math.
//
//   per batch entry: C (m, n) = op(A) (m, k) @ op(B) (k, n) (+ bias (n))
//
// Loop nest (BLIS; ref: Van Zee & van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", https://doi.org/10.1145/2764454), outermost first:
//   jc over kNc columns of C
//     pc over kKc of k: B[pc:+kKc, jc:+kNc] packed into kKc x NR panels (L3)
//       ic over kMc rows: A[ic:+kMc, pc:+kKc] packed into MR x kKc panels (L2)
//         jr over NR: microkernel over the MR-row tiles of the block, with its B panel
//         (kKc x NR = 16 KB) held in L1
// The first pc block writes C (bias fused into the kernel's initial accumulators); later blocks
// accumulate. Packing is skipped when the copy would not pay: A is read in place unless a block
// of C is wide, B when the block has few row tiles, and a call with too little work runs on the
// calling thread without touching scratch memory.
//
// Threads: C is cut into equal chunks (batch entries x row chunks x column chunks, sizes in whole
// MR/NR tiles), one team (attn/threads.h) processes them with a static schedule, and each thread packs
// into its own grow-only scratch, so threads never wait on one another inside a call.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>

#include "attn/kernels.h"
#include "attn/matmul.h"
#include "attn/threads.h"

namespace attn {
namespace {

// Block sizes for a 32 KB L1d / 512 KB L2 / shared L3 (AMD Zen 3; also fine for Intel cores with
// 1-2 MB L2): kKc x 16 floats of B = 16 KB (half of L1); kMc x kKc of A = 144 KB (L2);
// kKc x kNc of B = 2 MB per thread (L3). kMc is a multiple of every MR in the table (4, 6).
// A kernel set may bring its own kc and mc (KernelTable::gemm_kc, gemm_mc); these are the defaults.
constexpr size_t kKc = 256;
constexpr size_t kMc = 144;
constexpr size_t kNc = 2048;

// Below this many multiply-adds a call runs on the calling thread: a fork/join costs a
// few microseconds, about what one core needs for this much work.
constexpr double kParallelMinMacs = 1 << 17;
// Per-thread work below which adding a thread does not pay off.
constexpr double kMacsPerThread = 1 << 16;

// A grow-only, 64-byte-aligned float buffer. One per thread: team threads live as long as the
// process, so after the first call of a given size the hot path allocates nothing.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { release(); }

  // At least `count` floats, or null when the allocation fails.
  float* get(size_t count) {
    if (count > capacity_) {
      release();
      data_ = static_cast<float*>(::operator new(count * sizeof(float), std::align_val_t{64}, std::nothrow));
      if (data_ == nullptr) return nullptr;
      capacity_ = count;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{64});
    data_ = nullptr;
    capacity_ = 0;
  }
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

struct ThreadScratch {
  Scratch a, b, wide;
};

ThreadScratch& thread_scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

// Element (r, c) of a matrix view is p[r * rs + c * cs]; one of rs, cs is 1.
struct View {
  const float* p;
  size_t rs, cs;
  const float* at(size_t r, size_t c) const { return p + r * rs + c * cs; }
};

size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

// dst[p * R + i] = src[i * stride + p] for i < rows (<= R), p < len: `rows` strided vectors
// interleaved into one panel. All rows are read side by side, p after p, so each is a sequential
// stream and the panel is written in order.
template <size_t R>
void interleave(const float* src, size_t stride, size_t rows, size_t len, float* dst) {
  if (rows == R) {
    for (size_t p = 0; p < len; ++p, dst += R) {
      for (size_t i = 0; i < R; ++i) dst[i] = src[i * stride + p];
    }
  } else {
    for (size_t p = 0; p < len; ++p, dst += R) {
      for (size_t i = 0; i < rows; ++i) dst[i] = src[i * stride + p];
    }
  }
}

// The same for a panel width known only at run time; the table's widths get unrolled copies.
void interleave_any(size_t width, const float* src, size_t stride, size_t rows, size_t len, float* dst) {
  switch (width) {
    case 4: return interleave<4>(src, stride, rows, len, dst);
    case 6: return interleave<6>(src, stride, rows, len, dst);
    case 8: return interleave<8>(src, stride, rows, len, dst);
    case 12: return interleave<12>(src, stride, rows, len, dst);
    case 16: return interleave<16>(src, stride, rows, len, dst);
    case 32: return interleave<32>(src, stride, rows, len, dst);
    default:
      for (size_t p = 0; p < len; ++p, dst += width) {
        for (size_t i = 0; i < rows; ++i) dst[i] = src[i * stride + p];
      }
  }
}

// A[0:mc, 0:kc] -> MR-row panels, panel q holding A[q*MR + i, p] at [q*MR*kc + p*MR + i].
// Rows of the last panel past mc are left unwritten: the kernel never reads them.
void pack_a(const View& a, size_t mc, size_t kc, size_t mr, float* dst) {
  for (size_t r0 = 0; r0 < mc; r0 += mr, dst += mr * kc) {
    const size_t rows = std::min(mr, mc - r0);
    if (a.cs == 1) {
      interleave_any(mr, a.at(r0, 0), a.rs, rows, kc, dst);
    } else {
      for (size_t p = 0; p < kc; ++p) std::copy_n(a.at(r0, p), rows, dst + p * mr);
    }
  }
}

// B[0:kc, 0:nc] -> NR-column panels, panel q holding B[p, q*NR + j] at [q*NR*kc + p*NR + j].
// Columns of the last panel past nc are left unwritten: the kernel never reads them.
void pack_b(const View& b, size_t kc, size_t nc, size_t nr, float* dst) {
  if (b.cs == 1) {
    // Row by row, so B is read in order (down a panel, rows are a page apart for wide B).
    for (size_t p = 0; p < kc; ++p) {
      const float* src = b.at(p, 0);
      float* out = dst + p * nr;
      for (size_t c0 = 0; c0 < nc; c0 += nr, out += nr * kc) std::copy_n(src + c0, std::min(nr, nc - c0), out);
    }
  } else {
    for (size_t c0 = 0; c0 < nc; c0 += nr, dst += nr * kc) {
      interleave_any(nr, b.at(0, c0), b.cs, std::min(nr, nc - c0), kc, dst);
    }
  }
}

// B^T[c0 + j, 0:kc] for j < nc (16-bit rows `ld` apart) -> NR-column panels as pack_b lays them out:
// each panel's rows widened into `wide` (nr x kc floats, in L1/L2), then interleaved.
void pack_b16(const KernelTable& kt, DType dtype, const uint16_t* bt, size_t ld, size_t kc, size_t nc, size_t nr,
              float* wide, float* dst) {
  const auto cvt = dtype == DType::kF16 ? kt.cvt_f16_f32 : kt.cvt_bf16_f32;
  for (size_t c0 = 0; c0 < nc; c0 += nr, dst += nr * kc) {
    const size_t cols = std::min(nr, nc - c0);
    for (size_t j = 0; j < cols; ++j) cvt(bt + (c0 + j) * ld, wide + j * kc, kc);
    interleave_any(nr, wide, kc, cols, kc, dst);
  }
}

// One independent block of C: C[0:m, 0:n] (ldc) = A @ B (+ bias[0:n]). With b16 set, B is
// B^T's 16-bit rows, b16[j * k + p] = B[p, j].
struct Block {
  View a, b;
  const uint16_t* b16;
  DType b_dtype;
  float* c;
  size_t ldc;
  const float* bias;
  size_t m, n, k;
};

Status gemm_block(const KernelTable& kt, const Block& blk) {
  const size_t mr = kt.gemm_mr, nr = kt.gemm_nr;
  const size_t kc_blk = kt.gemm_kc != 0 ? kt.gemm_kc : kKc, mc_blk = kt.gemm_mc != 0 ? kt.gemm_mc : kMc;
  const size_t m = blk.m, n = blk.n, k = blk.k;
  // A packed panel is reread once per column tile, a packed B panel once per row tile; below
  // a few reuses the copy costs more than reading in place. Rows of A read in place stream well
  // (single thread, Zen 3: 1.2x faster than packing at n = 64, equal at n = 512 and 2048, with
  // row strides of 2-8 KB), but a wide block packs them so that its MC x KC block of A is
  // compact in L2 whatever the stride. A transposed A in place reads a few floats per row of
  // storage at each step of k, which only pays for narrow blocks (faster at n = 64, 1.7x
  // slower at n = 256). The kernel needs B rows contiguous, so a transposed B is always packed.
  const size_t col_tiles = (n + nr - 1) / nr;
  const bool pack_a_panels = blk.a.cs == 1 ? col_tiles > 32 : col_tiles > 4;
  const bool pack_b_panels = blk.b16 != nullptr || blk.b.cs != 1 || m > 2 * mr;
  float* a_buf = nullptr;
  float* b_buf = nullptr;
  float* wide = nullptr;
  if (pack_a_panels || pack_b_panels) {
    ThreadScratch& scratch = thread_scratch();
    const size_t kc_max = std::max<size_t>(1, std::min(kc_blk, k));
    if (pack_a_panels && !(a_buf = scratch.a.get(round_up(std::min(mc_blk, m), mr) * kc_max))) {
      return Status::kOutOfMemory;
    }
    if (pack_b_panels && !(b_buf = scratch.b.get(round_up(std::min(kNc, n), nr) * kc_max))) {
      return Status::kOutOfMemory;
    }
    if (blk.b16 != nullptr && !(wide = scratch.wide.get(nr * kc_max))) return Status::kOutOfMemory;
  }
  const size_t a_rs = pack_a_panels ? 1 : blk.a.rs, a_cs = pack_a_panels ? mr : blk.a.cs;
  const size_t ldb = pack_b_panels ? nr : blk.b.rs;

  for (size_t jc = 0; jc < n; jc += kNc) {
    const size_t nc = std::min(kNc, n - jc);
    // k == 0 still runs one pass with kc = 0, which writes the bias (or zeros).
    for (size_t pc = 0; pc == 0 || pc < k; pc += kc_blk) {
      const size_t kc = std::min(kc_blk, k - pc);
      const bool accumulate = pc != 0;
      if (blk.b16 != nullptr) {
        pack_b16(kt, blk.b_dtype, blk.b16 + jc * k + pc, k, kc, nc, nr, wide, b_buf);
      } else if (pack_b_panels) {
        pack_b(View{blk.b.at(pc, jc), blk.b.rs, blk.b.cs}, kc, nc, nr, b_buf);
      }
      for (size_t ic = 0; ic < m; ic += mc_blk) {
        const size_t mc = std::min(mc_blk, m - ic);
        if (pack_a_panels) pack_a(View{blk.a.at(ic, pc), blk.a.rs, blk.a.cs}, mc, kc, mr, a_buf);
        const size_t a_ms = pack_a_panels ? mr * kc : mr * blk.a.rs;
        for (size_t jr = 0; jr < nc; jr += nr) {
          const size_t n_valid = std::min(nr, nc - jr);
          const float* b = pack_b_panels ? b_buf + jr * kc : blk.b.at(pc, jc + jr);
          const float* bias = blk.bias != nullptr ? blk.bias + jc + jr : nullptr;
          const float* a = pack_a_panels ? a_buf : blk.a.at(ic, pc);
          kt.gemm_ukernel(mc, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, blk.c + ic * blk.ldc + jc + jr,
                          blk.ldc, bias, accumulate);
        }
      }
    }
  }
  return Status::kOk;
}

// How C is cut for the threads: every matrix into row_chunks x col_chunks pieces.
struct Split {
  size_t row_chunks = 1, col_chunks = 1;
};

size_t gcd(size_t a, size_t b) {
  while (b != 0) {
    const size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Cuts each matrix into enough chunks that batch * chunks divides evenly among the threads, and
// shapes them to minimize per-thread cost: the chunk's tile area plus the packing it repeats
// (a thread packs the A rows and B columns of its chunk; one packed float costs about as much
// as 16 multiply-adds).
Split choose_split(size_t batch, size_t threads, size_t m, size_t n, size_t mr, size_t nr) {
  const size_t chunks = threads / gcd(batch, threads);
  const size_t row_tiles = (m + mr - 1) / mr, col_tiles = (n + nr - 1) / nr;
  Split best;
  double best_cost = -1;
  for (size_t rows = 1; rows <= chunks; ++rows) {
    if (chunks % rows != 0) continue;
    const size_t cols = chunks / rows;
    if (rows > row_tiles || cols > col_tiles) continue;
    const double mc = static_cast<double>((row_tiles + rows - 1) / rows * mr);
    const double nc = static_cast<double>((col_tiles + cols - 1) / cols * nr);
    const double cost = mc * nc + 16.0 * (mc + nc);
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = Split{rows, cols};
    }
  }
  return best;
}

// [begin, end) of chunk `index` of `count` over `size` elements, cut at multiples of `unit`.
void chunk_range(size_t size, size_t unit, size_t count, size_t index, size_t* begin, size_t* end) {
  const size_t units = (size + unit - 1) / unit;
  *begin = std::min(size, units * index / count * unit);
  *end = std::min(size, units * (index + 1) / count * unit);
}

}  // namespace

Status matmul(const MatmulArgs& args) {
  const size_t m = args.m, k = args.k, n = args.n;
  const bool half_b = args.b16 != nullptr;
  if (half_b && (!args.trans_b || args.batch_rank != 0 || (args.b_dtype != DType::kF16 && args.b_dtype != DType::kBF16))) {
    return Status::kBadShape;
  }
  if (m == 0 || n == 0) return Status::kOk;
  size_t batch = 1;
  for (size_t i = 0; i < args.batch_rank; ++i) batch *= args.batch_dims[i];
  if (batch == 0) return Status::kOk;

  const KernelTable& kt = kernels();
  const View a{args.a, args.trans_a ? 1 : k, args.trans_a ? m : 1};
  const View b{args.b, args.trans_b ? 1 : n, args.trans_b ? k : 1};

  // A call from inside another parallel region (a per-head loop, say) runs on its thread.
  const double macs = static_cast<double>(batch) * m * n * std::max<size_t>(k, 1);
  size_t threads = 1;
  if (macs >= kParallelMinMacs && !in_parallel()) {
    threads = std::min(static_cast<size_t>(num_threads()), static_cast<size_t>(macs / kMacsPerThread));
    threads = std::max<size_t>(threads, 1);
  }
  const Split split = threads > 1 ? choose_split(batch, threads, m, n, kt.gemm_mr, kt.gemm_nr) : Split{};
  const size_t per_matrix = split.row_chunks * split.col_chunks;
  const size_t tasks = batch * per_matrix;

  auto run_task = [&](size_t task) {
    const size_t bi = task / per_matrix, piece = task % per_matrix;
    size_t a_off = 0, b_off = 0, rem = bi;
    for (size_t d = args.batch_rank; d-- > 0;) {
      const size_t idx = rem % args.batch_dims[d];
      rem /= args.batch_dims[d];
      a_off += idx * args.a_batch_strides[d];
      b_off += idx * args.b_batch_strides[d];
    }
    size_t r0, r1, c0, c1;
    chunk_range(m, kt.gemm_mr, split.row_chunks, piece / split.col_chunks, &r0, &r1);
    chunk_range(n, kt.gemm_nr, split.col_chunks, piece % split.col_chunks, &c0, &c1);
    if (r0 == r1 || c0 == c1) return Status::kOk;
    Block blk;
    blk.a = View{args.a + a_off + r0 * a.rs, a.rs, a.cs};
    blk.b = View{half_b ? nullptr : args.b + b_off + c0 * b.cs, b.rs, b.cs};
    blk.b16 = half_b ? args.b16 + c0 * k : nullptr;
    blk.b_dtype = args.b_dtype;
    blk.c = args.c + bi * m * n + r0 * n + c0;
    blk.ldc = n;
    blk.bias = args.bias != nullptr ? args.bias + c0 : nullptr;
    blk.m = r1 - r0;
    blk.n = c1 - c0;
    blk.k = k;
    return gemm_block(kt, blk);
  };

  if (threads == 1) {
    for (size_t t = 0; t < tasks; ++t) {
      const Status s = run_task(t);
      if (s != Status::kOk) return s;
    }
    return Status::kOk;
  }

  std::atomic<int> failed{static_cast<int>(Status::kOk)};
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(static_cast<int>(threads), [&](Team& team) {
    team.for_static(tasks, [&](size_t t) {
      const Status s = run_task(t);
      if (s != Status::kOk) failed.store(static_cast<int>(s), std::memory_order_relaxed);
    });
  });
  return static_cast<Status>(failed.load());
}

}  // namespace attn
