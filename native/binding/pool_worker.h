// The base of the binding's thread-pool jobs (attentionAsync, MultiHeadAttention.forwardAsync) and
// the one async-safety policy they all follow (ARCHITECTURE.md, "Async calls and buffer safety").
//
// A pool job runs while JS keeps going, and N-API cannot pin an ArrayBuffer: a caller may transfer
// one away (postMessage, structuredClone with transfer) mid-job, and its memory is freed with the
// clone. So a job only ever touches memory that no caller can detach:
//   - inputs backed by a SharedArrayBuffer (which cannot be detached) are used in place; any other
//     input is copied when the job is queued (PoolArrays::input) into reused staging memory;
//   - outputs are created by the job (PoolArrays::output) and handed to JS only when it settles,
//     so no caller holds them while the job writes;
//   - long-lived inputs read by every call (a layer's weights) must be SharedArrayBuffer-backed:
//     copying them per call would cost more than the call, so the job refuses anything else
//     (lib/mha.ts hands layers SharedArrayBuffer copies made once, at construction).
// Every array is also referenced until the job settles, so the garbage collector frees none of
// them under the pool thread.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
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
bool is_shared(const Napi::Value& value);

// Memory for the input copies of pool jobs. A fresh page costs a page fault on first touch, and on
// paravirtualized hosts a fault costs microseconds: copying 48 MB of attention inputs into fresh
// memory took 370 ms on the JS thread (the event-loop stall), into reused memory 9 ms. So released
// blocks are kept for the next job, up to kStagingKeepBytes in all (largest first out), and large
// blocks ask for transparent huge pages. What is kept is reported by stagingBytes().
class StagingBlock {
 public:
  StagingBlock() = default;
  explicit StagingBlock(size_t bytes);
  StagingBlock(StagingBlock&& other) noexcept : data_(std::exchange(other.data_, nullptr)), bytes_(other.bytes_) {}
  StagingBlock& operator=(StagingBlock&& other) noexcept;
  StagingBlock(const StagingBlock&) = delete;
  StagingBlock& operator=(const StagingBlock&) = delete;
  ~StagingBlock();
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // Gives up the memory (the caller returns it with recycle() when done with it).
  void* release() { return std::exchange(data_, nullptr); }
  // Puts memory from release() back among the blocks kept for reuse.
  static void recycle(void* data, size_t bytes);

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Bytes of staging memory kept for reuse right now.
size_t staging_bytes_kept();

// A new Float32Array of `count` uninitialized elements in reused memory (see StagingBlock): the
// buffer goes back to the cache when V8 collects it. For large outputs every element of which the
// caller writes, where fresh memory would cost a page fault per 4 KiB and zeroing besides.
Napi::Float32Array recycled_float32_array(Napi::Env env, size_t count, float** data);

// The arrays of one pool job, secured by the policy above. Built on the JS thread; the pointers it
// returns stay valid until the job is destroyed.
class PoolArrays {
 public:
  // `count` elements at `data`, an input the job reads: in place when shared, else a copy.
  template <typename T>
  const T* input(const Napi::Value& array, const T* data, size_t count) {
    keep(array);
    if (data == nullptr || count == 0 || is_shared(array)) return data;
    StagingBlock block(count * sizeof(T));
    std::memcpy(block.data(), data, count * sizeof(T));
    const T* out = static_cast<const T*>(block.data());
    copies_.push_back(std::move(block));
    return out;
  }

  // A new Float32Array of `count` elements for the job to write (zero-filled). Returns where to
  // write; `ref` holds the array (a handle would not outlive this scope) for the settled promise.
  float* output(Napi::Env env, size_t count, Napi::ObjectReference* ref) {
    Napi::Float32Array array = Napi::Float32Array::New(env, count);
    *ref = Napi::Persistent(static_cast<Napi::Object>(array));
    return count != 0 ? array.Data() : nullptr;
  }

  // A long-lived input: throws TypeError unless a SharedArrayBuffer backs it.
  void require_shared(const Napi::Value& array, const char* name) {
    if (!is_shared(array)) {
      throw Napi::TypeError::New(array.Env(), std::string("Expected a SharedArrayBuffer-backed Float32Array for ") + name +
                                                  " in an async call (an ArrayBuffer could be transferred away while it runs)");
    }
    keep(array);
  }

  void keep(const Napi::Value& value) {
    if (value.IsObject()) refs_.push_back(Napi::Persistent(value.As<Napi::Object>()));
  }

 private:
  std::vector<StagingBlock> copies_;
  std::vector<Napi::ObjectReference> refs_;
};

}  // namespace attn_binding
