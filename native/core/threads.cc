#include "attn/threads.h"

#include <omp.h>

#include <atomic>

namespace attn {
namespace {
std::atomic<int>& thread_count() {
  static std::atomic<int> count{omp_get_num_procs() > 0 ? omp_get_num_procs() : 1};
  return count;
}
}  // namespace

int num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_count().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

std::mutex& compute_lock() {
  static std::mutex lock;
  return lock;
}

}  // namespace attn
