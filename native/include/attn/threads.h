// Thread-count policy and the one parallel construct of native/core.
//
// One process-wide count (default: the CPUs this process may run on). Parallel regions are
// serialized by compute_lock(): concurrent async jobs on the libuv pool take turns using all the
// threads instead of each spawning a full team and oversubscribing the cores.
//
// parallel(n, fn) runs fn(team) on a team of n threads, the caller being rank 0, and returns when
// all of them have. With ATTN_OPENMP it is `#pragma omp parallel num_threads(n)` and the team's
// loops are orphaned `#pragma omp for` constructs, exactly what the drivers used to write inline;
// without it (Apple clang has no OpenMP; -DATTN_OPENMP=OFF) the same regions run on a small
// persistent std::thread pool (native/core/threads.cc), so nothing links an OpenMP runtime.
// A region opened inside another one runs on the calling thread alone (OpenMP's default for
// nested regions).
#pragma once
#include <cstddef>
#include <mutex>
#include <type_traits>

namespace attn {

int num_threads();
void set_num_threads(int n);  // n >= 1
std::mutex& compute_lock();

// "openmp" or "threads": what parallel() runs on in this build.
const char* threading_name();

// True on a thread that is running a region of more than one thread (omp_in_parallel()).
bool in_parallel();

// The thread's seat in a running region. Every thread of the team must reach the same loops in
// the same order, with the same arguments (the OpenMP worksharing rule); each loop ends with a
// barrier, so what one loop wrote is visible to every thread in the next.
class Team {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }

  // Iterations [0, n) handed out `chunk` at a time to whichever thread asks next
  // (schedule(dynamic, chunk)).
  template <typename F>
  void for_dynamic(size_t n, size_t chunk, F&& body) {
    auto range = [&body](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) body(i);
    };
    run_dynamic(n, chunk == 0 ? 1 : chunk, RangeFn{&range, &call_range<decltype(range)>});
  }

  // Iterations [0, n) cut into one contiguous block per thread (schedule(static)).
  template <typename F>
  void for_static(size_t n, F&& body) {
    auto range = [&body](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) body(i);
    };
    run_static(n, RangeFn{&range, &call_range<decltype(range)>});
  }

  // Internal: type-erased pieces shared with threads.cc.
  struct RangeFn {
    void* ctx;
    void (*call)(void* ctx, size_t begin, size_t end);
  };
  struct Shared;
  Team(int rank, int size, Shared* shared) : rank_(rank), size_(size), shared_(shared) {}

 private:
  template <typename R>
  static void call_range(void* ctx, size_t begin, size_t end) {
    (*static_cast<R*>(ctx))(begin, end);
  }
  void run_dynamic(size_t n, size_t chunk, RangeFn body);
  void run_static(size_t n, RangeFn body);

  int rank_, size_;
  Shared* shared_;  // the pool's per-region state; unused with OpenMP
};

namespace detail {
struct TeamFn {
  void* ctx;
  void (*call)(void* ctx, Team& team);
};
void run_parallel(int threads, TeamFn fn);
}  // namespace detail

// fn(Team&) on `threads` threads (clamped to >= 1). fn must not throw.
template <typename F>
void parallel(int threads, F&& fn) {
  using Fn = std::remove_reference_t<F>;
  detail::run_parallel(threads, detail::TeamFn{const_cast<void*>(static_cast<const void*>(&fn)),
                                               [](void* ctx, Team& team) { (*static_cast<Fn*>(ctx))(team); }});
}

}  // namespace attn
