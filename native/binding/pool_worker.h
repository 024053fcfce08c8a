// The base of the binding's thread-pool jobs (attentionAsync, MultiHeadAttention.forwardAsync).
#pragma once
#include <napi.h>

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

}  // namespace attn_binding
