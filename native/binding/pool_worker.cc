#include "pool_worker.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>

namespace attn_binding {

namespace {

constexpr size_t kStagingKeepBytes = size_t{128} << 20;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr int kMadvPopulateWrite = 23;  // MADV_POPULATE_WRITE, absent from older libc headers

struct Free {
  void* data;
  size_t bytes;
};

// Blocks released by finished jobs. Jobs are created and destroyed on the JS thread, but a process
// may run the addon in several worker threads, so the list is locked.
struct Cache {
  std::mutex lock;
  std::vector<Free> blocks;
  size_t bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: jobs may finish during process exit
  return *c;
}

constexpr size_t kMmapThresholdMax = size_t{32} << 20;

size_t rounded(size_t bytes) { return bytes >= kHugePage ? (bytes + kHugePage - 1) / kHugePage * kHugePage : (bytes + 63) / 64 * 64; }

bool has_block(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> guard(c.lock);
  return std::any_of(c.blocks.begin(), c.blocks.end(), [bytes](const Free& f) { return f.bytes >= bytes; });
}

}  // namespace

bool is_shared(const Napi::Value& value) {
  napi_value buffer;
  if (napi_get_typedarray_info(value.Env(), value, nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok) return false;
  bool is_array_buffer = true;
  return napi_is_arraybuffer(value.Env(), buffer, &is_array_buffer) == napi_ok && !is_array_buffer;
}

StagingBlock::StagingBlock(size_t bytes) : bytes_(rounded(bytes)) {
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> guard(c.lock);
    // The smallest kept block that fits.
    auto best = c.blocks.end();
    for (auto it = c.blocks.begin(); it != c.blocks.end(); ++it) {
      if (it->bytes >= bytes_ && (best == c.blocks.end() || it->bytes < best->bytes)) best = it;
    }
    if (best != c.blocks.end()) {
      data_ = best->data;
      bytes_ = best->bytes;
      c.bytes -= best->bytes;
      c.blocks.erase(best);
      return;
    }
  }
  data_ = std::aligned_alloc(bytes_ >= kHugePage ? kHugePage : 64, bytes_);
  if (data_ == nullptr) throw std::bad_alloc();
  if (bytes_ >= kHugePage) {
    // Huge pages, faulted in by one call rather than one fault per 4 KiB page as the copy touches
    // them (MADV_POPULATE_WRITE, Linux 5.14; older kernels refuse it and the copy faults instead).
    madvise(data_, bytes_, MADV_HUGEPAGE);
    madvise(data_, bytes_, kMadvPopulateWrite);
  }
}

StagingBlock& StagingBlock::operator=(StagingBlock&& other) noexcept {
  if (this != &other) {
    this->~StagingBlock();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = other.bytes_;
  }
  return *this;
}

StagingBlock::~StagingBlock() {
  if (data_ != nullptr) recycle(std::exchange(data_, nullptr), bytes_);
}

void StagingBlock::recycle(void* data, size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> guard(c.lock);
  c.blocks.push_back({data, bytes});
  c.bytes += bytes;
  // Over the bound: release the largest blocks first (the rarest sizes to be asked for again).
  while (c.bytes > kStagingKeepBytes) {
    auto largest = std::max_element(c.blocks.begin(), c.blocks.end(),
                                    [](const Free& a, const Free& b) { return a.bytes < b.bytes; });
    std::free(largest->data);
    c.bytes -= largest->bytes;
    c.blocks.erase(largest);
  }
}

Napi::Float32Array recycled_float32_array(Napi::Env env, size_t count, float** data) {
  const size_t bytes = std::max<size_t>(count, 1) * sizeof(float);
  // A kept block comes back only after V8 collects the array that held it and the finalizer runs
  // on a turn of the event loop; a tight synchronous loop gets none. Below glibc's largest mmap
  // threshold (32 MiB) V8's own allocation then reuses freed heap memory, which is faster than
  // fresh pages; above it every allocation is fresh, so a new block it is, kept for later.
  if (!has_block(rounded(bytes)) && bytes < kMmapThresholdMax) {
    Napi::Float32Array array = Napi::Float32Array::New(env, count);
    *data = count != 0 ? array.Data() : nullptr;
    return array;
  }
  StagingBlock block(bytes);
  const size_t kept = block.bytes();
  void* memory = block.release();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, memory, count * sizeof(float),
      [kept](Napi::BasicEnv, void* p) { StagingBlock::recycle(p, kept); });
  *data = static_cast<float*>(memory);
  return Napi::Float32Array::New(env, count, buffer, 0);
}

size_t staging_bytes_kept() {
  Cache& c = cache();
  std::lock_guard<std::mutex> guard(c.lock);
  return c.bytes;
}

}  // namespace attn_binding
