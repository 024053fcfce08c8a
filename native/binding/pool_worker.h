// The base of the binding's thread-pool jobs (attentionAsync, MultiHeadAttention.forwardAsync) and
// the one async-safety policy they all follow (ARCHITECTURE.md, "Async calls and buffer safety").
//
// A pool job runs while JS keeps going, and N-API cannot pin an ArrayBuffer: a caller may transfer
// one away (postMessage, structuredClone with transfer) mid-job, and its memory is freed with the
// clone. So a job only ever touches memory that cannot be detached:
//   - arrays backed by a SharedArrayBuffer (which cannot be detached) are used in place;
//   - any other input of the call is copied when the job is queued (PoolArrays::input);
//   - any other output is written to a staging buffer and copied into the caller's array when the
//     job settles, after checking that the array is still attached (PoolArrays::output/commit);
//   - long-lived inputs read by every call (a layer's weights) must be SharedArrayBuffer-backed:
//     copying them per call would cost more than the call, so the job refuses anything else
//     (lib/mha.ts hands layers SharedArrayBuffer copies made once, at construction).
// Every array is also referenced until the job settles, so the garbage collector frees none of
// them under the pool thread.
#pragma once
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace attn_binding {

class PoolWorker : public Napi::AsyncWorker {
 public:
  using Napi::AsyncWorker::AsyncWorker;

 protected:
  // While a worker thread's environment is torn down (worker.terminate() with this job in
  // flight), node-addon-api's completion handler cannot open a handle scope and throws from a
  // libuv callback, which would abort the process. Nobody can observe the promise any more then,
  // so the job is only freed.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    try {
      Napi::AsyncWorker::OnWorkComplete(env, status);
    } catch (const Napi::Error&) {
      Destroy();
    }
  }
};

// True when a SharedArrayBuffer backs the typed array `value` (Node-API 8 has no direct test: the
// buffer of a typed array is either an ArrayBuffer or a SharedArrayBuffer).
inline bool is_shared(const Napi::Value& value) {
  napi_value buffer;
  if (napi_get_typedarray_info(value.Env(), value, nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok) return false;
  bool is_array_buffer = true;
  return napi_is_arraybuffer(value.Env(), buffer, &is_array_buffer) == napi_ok && !is_array_buffer;
}

// The arrays of one pool job, secured by the policy above. Built on the JS thread; the pointers it
// returns stay valid until the job is destroyed.
class PoolArrays {
 public:
  // `count` elements at `data`, an input the job reads: in place when shared, else a copy.
  template <typename T>
  const T* input(const Napi::Value& array, const T* data, size_t count) {
    keep(array);
    if (data == nullptr || count == 0 || is_shared(array)) return data;
    auto copy = std::make_unique<unsigned char[]>(count * sizeof(T));
    std::memcpy(copy.get(), data, count * sizeof(T));
    const T* out = reinterpret_cast<const T*>(copy.get());
    copies_.push_back(std::move(copy));
    return out;
  }

  // `count` floats at `data`, an output the job writes: in place when shared, else a staging
  // buffer that commit() copies into `array`.
  float* output(const Napi::Value& array, float* data, size_t count, const char* name) {
    keep(array);
    if (data == nullptr || count == 0 || is_shared(array)) return data;
    Staged staged{Napi::Persistent(array.As<Napi::Object>()), std::vector<float>(count), name};
    float* out = staged.buffer.data();
    staged_.push_back(std::move(staged));
    return out;
  }

  // A long-lived input: throws TypeError unless a SharedArrayBuffer backs it.
  void require_shared(const Napi::Value& array, const char* name) {
    if (!is_shared(array)) {
      throw Napi::TypeError::New(array.Env(), std::string("Expected a SharedArrayBuffer-backed Float32Array for ") + name +
                                                  " in an async call (an ArrayBuffer could be transferred away while it runs)");
    }
    keep(array);
  }

  // On the JS thread once the job has run: copies staged outputs back. Returns the name of an
  // output that was detached (or shrunk) meanwhile, or nullptr when all were written.
  const char* commit() {
    for (Staged& s : staged_) {
      const Napi::Value value = s.array.Value();
      auto array = value.As<Napi::Float32Array>();
      if (array.ArrayBuffer().IsDetached() || array.ElementLength() < s.buffer.size()) return s.name;
      std::memcpy(array.Data(), s.buffer.data(), s.buffer.size() * sizeof(float));
    }
    return nullptr;
  }

  void keep(const Napi::Value& value) {
    if (value.IsObject()) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
  }

 private:
  struct Staged {
    Napi::ObjectReference array;
    std::vector<float> buffer;
    const char* name;
  };
  std::vector<std::unique_ptr<unsigned char[]>> copies_;
  std::vector<Staged> staged_;
  std::vector<Napi::ObjectReference> refs_;
};

}  // namespace attn_binding
