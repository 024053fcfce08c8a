// Machine-limit probes for the benchmark (private: leading underscore, not re-exported by lib/).
// _probePeak(threads, seconds) -> { gflops, kernel, threads }
// _probeBandwidth(threads, bytes) -> { gbps, bytes, threads }
// Each probe runs several trials, so the arguments are bounded to keep a hostile call short:
// threads up to the CPU count (more would time-slice the same cores, multiplying the wall time),
// seconds up to 1 per trial, and bytes up to 4 GiB.
#include <napi.h>

#include <thread>

#include "args.h"
#include "attn/probe.h"
#include "exports.h"

namespace attn_binding {

namespace {

constexpr double kMaxSeconds = 1.0;
constexpr size_t kMinBytes = size_t{1} << 20;
constexpr size_t kMaxBytes = size_t{1} << 32;

int to_threads(const Napi::CallbackInfo& cb, size_t index) {
  const size_t n = to_size(cb[index], "threads");
  const unsigned cpus = std::thread::hardware_concurrency();
  const size_t max = cpus > 0 ? cpus : 4096;
  if (n < 1 || n > max) {
    throw_range_error(cb.Env(), "Expected threads in [1, " + std::to_string(max) + "] (the CPU count) but received " +
                                    std::to_string(n));
  }
  return static_cast<int>(n);
}

Napi::Value probe_peak(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const int threads = to_threads(cb, 0);
  const double seconds = to_number(cb[1], "seconds");
  if (!(seconds >= 0.001 && seconds <= kMaxSeconds)) throw_range_error(env, "Expected seconds in [0.001, 1]");
  const attn::PeakResult r = attn::probe_fma_peak(threads, seconds);
  Napi::Object out = Napi::Object::New(env);
  out.Set("gflops", r.gflops);
  out.Set("kernel", r.kernel);
  out.Set("threads", threads);
  return out;
}

Napi::Value probe_bandwidth(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const int threads = to_threads(cb, 0);
  const size_t bytes = to_size(cb[1], "bytes");
  if (bytes < kMinBytes || bytes > kMaxBytes) throw_range_error(env, "Expected bytes in [1 MiB, 4 GiB]");
  attn::BandwidthResult r{};
  const attn::Status status = attn::probe_read_bandwidth(threads, bytes, &r);
  if (status != attn::Status::kOk) throw Napi::Error::New(env, attn::status_message(status));
  Napi::Object out = Napi::Object::New(env);
  out.Set("gbps", r.gbps);
  out.Set("bytes", static_cast<double>(bytes));
  out.Set("threads", threads);
  return out;
}

}  // namespace

void init_probe(Napi::Env env, Napi::Object exports) {
  exports.Set("_probePeak", Napi::Function::New(env, probe_peak, "_probePeak"));
  exports.Set("_probeBandwidth", Napi::Function::New(env, probe_bandwidth, "_probeBandwidth"));
}

}  // namespace attn_binding
