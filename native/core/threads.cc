// Thread-count policy and parallel regions (attn/threads.h). With ATTN_OPENMP a region is an
// OpenMP parallel region and its loops are orphaned worksharing constructs; without it, a pool of
// persistent std::threads gives the same semantics: rank 0 is the caller, worker i always takes
// rank i + 1 (so a thread that first-touched a range of memory reads it again in later regions,
// as with OpenMP), and every loop ends with a barrier.
#include "attn/threads.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#if defined(ATTN_OPENMP)
#include <omp.h>
#else
#include <chrono>
#include <condition_variable>
#include <system_error>
#include <thread>
#if defined(__linux__)
#include <sched.h>
#endif
#endif

namespace attn {
namespace {

int default_threads() {
#if defined(ATTN_OPENMP)
  const int n = omp_get_num_procs();
#elif defined(__linux__)
  // The CPUs this process may run on (taskset, cgroups cpusets), as omp_get_num_procs() counts.
  cpu_set_t set;
  const int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                             : static_cast<int>(std::thread::hardware_concurrency());
#else
  const int n = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return n > 0 ? n : 1;
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{default_threads()};
  return count;
}

// [begin, end) of thread `rank` under schedule(static) with no chunk size: the first n % size
// threads get one iteration more (libgomp's split, so both builds cut loops identically).
void static_block(size_t n, int rank, int size, size_t* begin, size_t* end) {
  const size_t t = static_cast<size_t>(rank), nt = static_cast<size_t>(size);
  size_t q = n / nt, r = n % nt;
  if (t < r) {
    ++q;
    r = 0;
  }
  *begin = q * t + r;
  *end = *begin + q;
}

}  // namespace

int num_threads() { return thread_count().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_count().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

std::mutex& compute_lock() {
  static std::mutex lock;
  return lock;
}

#if defined(ATTN_OPENMP)

const char* threading_name() { return "openmp"; }

bool in_parallel() { return omp_in_parallel() != 0; }

void Team::run_dynamic(size_t n, size_t chunk, RangeFn body) {
  // schedule(dynamic) over chunk indices hands out the same pieces as schedule(dynamic, chunk)
  // over iterations, with one call per piece instead of one per iteration.
  const size_t chunks = (n + chunk - 1) / chunk;
#pragma omp for schedule(dynamic, 1)
  for (size_t c = 0; c < chunks; ++c) body.call(body.ctx, c * chunk, std::min(n, (c + 1) * chunk));
}

namespace detail {

void run_parallel(int threads, TeamFn fn) {
  // Always a parallel construct, even for one thread: it opens a new team, so the orphaned loops
  // inside bind to it and not to an enclosing region of the caller's.
#pragma omp parallel num_threads(std::max(threads, 1))
  {
    Team team(omp_get_thread_num(), omp_get_num_threads(), nullptr);
    fn.call(fn.ctx, team);
  }
}

}  // namespace detail

#else  // std::thread pool

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Every wait polls before it sleeps, as libgomp's does: the next region (the next matmul of a
// forward pass) or the rest of the team usually arrives within microseconds, while a sleeping
// thread is woken only after tens of microseconds, and on a busy machine not before the
// scheduler's next tick (measured: 512^3 matmuls on 2 threads ran at 1-thread speed with
// sleeping waits). Bounded, so an idle pool leaves the cores alone; and skipped when the team
// has more threads than there are CPUs, where a spinning thread only delays the one it waits for
// (libgomp throttles its spinning in that case too).
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Done>
bool spin_until(bool spin, Done done) {
  if (!spin) return done();
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 255) == 0 && std::chrono::steady_clock::now() - start > kSpin) return done();
  }
}

}  // namespace

// Per-region state: the dynamic loops' next chunk and a barrier. The last thread to arrive
// resets the counters for the next loop while every other thread still waits, then opens the
// next phase.
struct Team::Shared {
  Shared(int n, bool spin_waits) : size(n), spin(spin_waits) {}
  void barrier() {
    const uint64_t seen = phase.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == size) {
      arrived.store(0, std::memory_order_relaxed);
      next.store(0, std::memory_order_relaxed);
      {
        // Under the lock, so a waiter between its check and its sleep cannot miss it.
        std::lock_guard<std::mutex> lock(mutex);
        phase.store(seen + 1, std::memory_order_release);
      }
      cv.notify_all();
      return;
    }
    auto open = [&] { return phase.load(std::memory_order_acquire) != seen; };
    if (spin_until(spin, open)) return;
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, open);
  }

  const int size;
  const bool spin;
  std::atomic<size_t> next{0};
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> phase{0};
  std::mutex mutex;
  std::condition_variable cv;
};

namespace {

using Shared = Team::Shared;

thread_local bool t_in_region = false;  // running any region (a nested one then runs alone)
thread_local bool t_active = false;     // running a region of more than one thread

class Pool {
 public:
  void run(int threads, detail::TeamFn fn) {
    std::lock_guard<std::mutex> one_region(region_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (workers_ < threads - 1) {
        try {
          std::thread(&Pool::work, this, workers_, generation_.load(std::memory_order_relaxed)).detach();
        } catch (const std::system_error&) {
          break;  // no more threads to be had: run with those that exist
        }
        ++workers_;
      }
      threads = std::min(threads, workers_ + 1);
    }
    Shared shared(threads, threads <= cpus_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = fn;
      job_size_ = threads;
      shared_ = &shared;
      job_spin_ = shared.spin;
      pending_.store(threads - 1, std::memory_order_relaxed);
      generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    start_.notify_all();

    run_as(0, threads, &shared, fn);

    auto all_done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(shared.spin, all_done)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, all_done);
    }
  }

 private:
  static void run_as(int rank, int size, Shared* shared, detail::TeamFn fn) {
    t_in_region = true;
    t_active = size > 1;
    Team team(rank, size, shared);
    fn.call(fn.ctx, team);
    t_in_region = false;
    t_active = false;
  }

  void work(int index, uint64_t seen) {
    bool spin = false;  // whether the last region fitted the CPUs
    for (;;) {
      spin_until(spin, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      detail::TeamFn fn;
      int size;
      Shared* shared;
      {
        // The job is read under the lock together with its generation, so a worker that missed
        // a region it had no seat in never mixes two regions' fields.
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        fn = job_;
        size = job_size_;
        shared = shared_;  // valid only while a worker with a seat has not finished
        spin = job_spin_;
      }
      if (index + 1 >= size) continue;
      run_as(index + 1, size, shared, fn);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  const int cpus_ = default_threads();
  std::mutex region_;  // one region at a time
  std::mutex mutex_;   // guards the job fields and workers_
  std::condition_variable start_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  int workers_ = 0;
  detail::TeamFn job_{};
  int job_size_ = 0;
  Shared* shared_ = nullptr;
  bool job_spin_ = false;
};

// Never destroyed: the workers are detached and block on its condition variable for the life of
// the process (Node may exit while a worker thread is mid-region; destroying the pool under it
// would be a use-after-free, and the addon is never unloaded).
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

const char* threading_name() { return "threads"; }

bool in_parallel() { return t_active; }

void Team::run_dynamic(size_t n, size_t chunk, RangeFn body) {
  const size_t chunks = (n + chunk - 1) / chunk;
  for (;;) {
    const size_t c = shared_->next.fetch_add(1, std::memory_order_relaxed);
    if (c >= chunks) break;
    body.call(body.ctx, c * chunk, std::min(n, (c + 1) * chunk));
  }
  shared_->barrier();
}

namespace detail {

void run_parallel(int threads, TeamFn fn) {
  if (threads > 1 && !t_in_region) {
    pool().run(threads, fn);
    return;
  }
  // One thread, or nested in a region: the caller alone, in a team of its own.
  Team::Shared shared(1, false);
  const bool in_region = t_in_region;
  t_in_region = true;
  Team team(0, 1, &shared);
  fn.call(fn.ctx, team);
  t_in_region = in_region;
}

}  // namespace detail

#endif

void Team::run_static(size_t n, RangeFn body) {
  size_t begin, end;
  static_block(n, rank_, size_, &begin, &end);
  if (begin < end) body.call(body.ctx, begin, end);
#if defined(ATTN_OPENMP)
#pragma omp barrier
#else
  shared_->barrier();
#endif
}

}  // namespace attn
