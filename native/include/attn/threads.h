// Thread-count policy for the OpenMP parallel regions in native/core.
//
// One process-wide count (default: the number of CPUs OpenMP sees). Parallel regions are
// serialized by compute_lock(): concurrent async jobs on the libuv pool take turns using all the
// threads instead of each spawning a full team and oversubscribing the cores.
#pragma once
#include <mutex>

namespace attn {

int num_threads();
void set_num_threads(int n);  // n >= 1
std::mutex& compute_lock();

}  // namespace attn
