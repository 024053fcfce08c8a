// Machine-limit probes for the benchmark (private: leading underscore, not re-exported by lib/).
// _probePeak(threads, seconds) -> { gflops, kernel, threads }
// _probeBandwidth(threads, bytes) -> { gbps, bytes, threads }
#include <napi.h>

#include "args.h"
#include "attn/probe.h"
#include "exports.h"

namespace attn_binding {

namespace {

int to_threads(const Napi::CallbackInfo& cb, size_t index) {
  const size_t n = to_size(cb[index], "threads");
  if (n < 1 || n > 4096) throw_range_error(cb.Env(), "Expected threads in [1, 4096]");
  return static_cast<int>(n);
}

Napi::Value probe_peak(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const int threads = to_threads(cb, 0);
  const double seconds = to_number(cb[1], "seconds");
  if (!(seconds >= 0.001 && seconds <= 10.0)) throw_range_error(env, "Expected seconds in [0.001, 10]");
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
  if (bytes < (size_t{1} << 20) || bytes > (size_t{1} << 36)) {
    throw_range_error(env, "Expected bytes in [1 MiB, 64 GiB]");
  }
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
