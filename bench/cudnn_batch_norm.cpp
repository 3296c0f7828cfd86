// cuDNN's BatchNorm training forward and backward (the Ex entry points, no fused activation),
// timed with the benchmark's loop on the same inputs cunorm gets. cuDNN is loaded at run time
// (dlopen of libcudnn.so.9, then libcudnn.so, from the loader's search path), so that the
// benchmark runs, without the side-by-side columns, where cuDNN is absent, and a GPU machine's
// cuDNN (a system package or torch's wheel) serves a benchmark built elsewhere; cudnn.h is needed
// only to build. Every cuDNN call is checked.
#include "cudnn_batch_norm.hpp"

#include <cudnn.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

namespace bench {
namespace {

// The cuDNN entry points the benchmark calls, resolved from the loaded library.
struct Cudnn {
  decltype(&cudnnGetVersion) GetVersion;
  decltype(&cudnnGetErrorString) GetErrorString;
  decltype(&cudnnCreate) Create;
  decltype(&cudnnDestroy) Destroy;
  decltype(&cudnnSetStream) SetStream;
  decltype(&cudnnCreateTensorDescriptor) CreateTensorDescriptor;
  decltype(&cudnnDestroyTensorDescriptor) DestroyTensorDescriptor;
  decltype(&cudnnSetTensor4dDescriptor) SetTensor4dDescriptor;
  decltype(&cudnnDeriveBNTensorDescriptor) DeriveBNTensorDescriptor;
  decltype(&cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize) ForwardTrainingExWorkspaceSize;
  decltype(&cudnnGetBatchNormalizationBackwardExWorkspaceSize) BackwardExWorkspaceSize;
  decltype(&cudnnGetBatchNormalizationTrainingExReserveSpaceSize) TrainingExReserveSpaceSize;
  decltype(&cudnnBatchNormalizationForwardTrainingEx) ForwardTrainingEx;
  decltype(&cudnnBatchNormalizationBackwardEx) BackwardEx;
};

// The loaded library's entry points, or nullptr with the reason in `why`. Loaded once; never
// unloaded (cuDNN's own threads may outlive any point at which that would be safe).
const Cudnn* cudnn(std::string* why = nullptr) {
  static std::string failure;
  static const Cudnn* const loaded = []() -> const Cudnn* {
    void* library = nullptr;
    for (const char* name : {"libcudnn.so.9", "libcudnn.so"}) {
      library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (library != nullptr) break;
    }
    if (library == nullptr) {
      const char* error = dlerror();
      failure = error != nullptr ? error : "libcudnn.so.9 not found";
      return nullptr;
    }
    static Cudnn api{};
    bool complete = true;
    auto resolve = [&](auto& entry, const char* symbol) {
      entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(dlsym(library, symbol));
      if (entry == nullptr) {
        complete = false;
        failure = std::string("cuDNN lacks ") + symbol;
      }
    };
    resolve(api.GetVersion, "cudnnGetVersion");
    resolve(api.GetErrorString, "cudnnGetErrorString");
    resolve(api.Create, "cudnnCreate");
    resolve(api.Destroy, "cudnnDestroy");
    resolve(api.SetStream, "cudnnSetStream");
    resolve(api.CreateTensorDescriptor, "cudnnCreateTensorDescriptor");
    resolve(api.DestroyTensorDescriptor, "cudnnDestroyTensorDescriptor");
    resolve(api.SetTensor4dDescriptor, "cudnnSetTensor4dDescriptor");
    resolve(api.DeriveBNTensorDescriptor, "cudnnDeriveBNTensorDescriptor");
    resolve(api.ForwardTrainingExWorkspaceSize, "cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize");
    resolve(api.BackwardExWorkspaceSize, "cudnnGetBatchNormalizationBackwardExWorkspaceSize");
    resolve(api.TrainingExReserveSpaceSize, "cudnnGetBatchNormalizationTrainingExReserveSpaceSize");
    resolve(api.ForwardTrainingEx, "cudnnBatchNormalizationForwardTrainingEx");
    resolve(api.BackwardEx, "cudnnBatchNormalizationBackwardEx");
    return complete ? &api : nullptr;
  }();
  if (why != nullptr) *why = failure;
  return loaded;
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  std::fprintf(stderr, "\n%s failed: %s\n", what, cudnn()->GetErrorString(status));
  std::exit(1);
}

constexpr double kEpsilon = 1e-5;
constexpr double kMomentum = 0.1;

// A cuDNN handle on the benchmark's stream and the tensor descriptors of one problem and mode.
class CudnnProblem {
 public:
  CudnnProblem(const CudnnBatchNormInputs& in, cudnnBatchNormMode_t mode) : mode_(mode) {
    check_cudnn(cudnn()->Create(&handle_), "cudnnCreate");
    check_cudnn(cudnn()->SetStream(handle_, machine.stream), "cudnnSetStream");
    check_cudnn(cudnn()->CreateTensorDescriptor(&data_), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnn()->CreateTensorDescriptor(&channel_), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnn()->SetTensor4dDescriptor(
                    data_, in.layout == CUNORM_LAYOUT_NCHW ? CUDNN_TENSOR_NCHW : CUDNN_TENSOR_NHWC,
                    in.dtype == CUNORM_FLOAT16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT, static_cast<int>(in.n),
                    static_cast<int>(in.c), static_cast<int>(in.h), static_cast<int>(in.w)),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnn()->DeriveBNTensorDescriptor(channel_, data_, mode_), "cudnnDeriveBNTensorDescriptor");
  }
  CudnnProblem(const CudnnProblem&) = delete;
  CudnnProblem& operator=(const CudnnProblem&) = delete;
  ~CudnnProblem() {
    check_cudnn(cudnn()->DestroyTensorDescriptor(channel_), "cudnnDestroyTensorDescriptor");
    check_cudnn(cudnn()->DestroyTensorDescriptor(data_), "cudnnDestroyTensorDescriptor");
    check_cudnn(cudnn()->Destroy(handle_), "cudnnDestroy");
  }

  std::size_t forward_workspace() const {
    std::size_t bytes = 0;
    check_cudnn(cudnn()->ForwardTrainingExWorkspaceSize(handle_, mode_, CUDNN_BATCHNORM_OPS_BN, data_, nullptr, data_,
                                                        channel_, nullptr, &bytes),
                "cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize");
    return bytes;
  }
  std::size_t backward_workspace() const {
    std::size_t bytes = 0;
    check_cudnn(cudnn()->BackwardExWorkspaceSize(handle_, mode_, CUDNN_BATCHNORM_OPS_BN, data_, nullptr, data_, nullptr,
                                                 data_, channel_, nullptr, &bytes),
                "cudnnGetBatchNormalizationBackwardExWorkspaceSize");
    return bytes;
  }
  std::size_t reserve() const {
    std::size_t bytes = 0;
    check_cudnn(cudnn()->TrainingExReserveSpaceSize(handle_, mode_, CUDNN_BATCHNORM_OPS_BN, nullptr, data_, &bytes),
                "cudnnGetBatchNormalizationTrainingExReserveSpaceSize");
    return bytes;
  }

  // y = BN(x) with batch statistics; updates the running statistics, saves mean and invstd.
  void forward(const void* x, void* y, const void* gamma, const void* beta, float* running_mean, float* running_var,
               float* saved_mean, float* saved_invstd, DeviceBuffer& workspace, std::size_t workspace_bytes,
               DeviceBuffer& reserve, std::size_t reserve_bytes) const {
    const float one = 1.0f, zero = 0.0f;
    check_cudnn(cudnn()->ForwardTrainingEx(handle_, mode_, CUDNN_BATCHNORM_OPS_BN, &one, &zero, data_, x, nullptr,
                                           nullptr, data_, y, channel_, gamma, beta, kMomentum, running_mean,
                                           running_var, kEpsilon, saved_mean, saved_invstd, nullptr, workspace.get(),
                                           workspace_bytes, reserve.get(), reserve_bytes),
                "cudnnBatchNormalizationForwardTrainingEx");
  }

  // dx, dgamma, dbeta from dy, x and the forward's saved statistics and reserve space.
  void backward(const void* x, const void* dy, void* dx, const void* gamma, const void* beta, void* dgamma, void* dbeta,
                const float* saved_mean, const float* saved_invstd, DeviceBuffer& workspace,
                std::size_t workspace_bytes, DeviceBuffer& reserve, std::size_t reserve_bytes) const {
    const float one = 1.0f, zero = 0.0f;
    check_cudnn(cudnn()->BackwardEx(handle_, mode_, CUDNN_BATCHNORM_OPS_BN, &one, &zero, &one, &zero, data_, x, nullptr,
                                    nullptr, data_, dy, nullptr, nullptr, data_, dx, channel_, gamma, beta, dgamma,
                                    dbeta, kEpsilon, saved_mean, saved_invstd, nullptr, workspace.get(),
                                    workspace_bytes, reserve.get(), reserve_bytes),
                "cudnnBatchNormalizationBackwardEx");
  }

 private:
  cudnnBatchNormMode_t mode_;
  cudnnHandle_t handle_ = nullptr;
  cudnnTensorDescriptor_t data_ = nullptr, channel_ = nullptr;
};

double time_mode(CudnnBatchNormPass pass, const CudnnBatchNormInputs& in, cudnnBatchNormMode_t mode) {
  const CudnnProblem problem(in, mode);
  const std::size_t channel_bytes = static_cast<std::size_t>(in.c) * sizeof(float);
  DeviceBuffer out(in.tensor_bytes), running_mean(channel_bytes), running_var(channel_bytes), saved_mean(channel_bytes),
      saved_invstd(channel_bytes), dgamma(channel_bytes), dbeta(channel_bytes);
  check(cudaMemsetAsync(running_mean.get(), 0, channel_bytes, machine.stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(running_var.get(), 0, channel_bytes, machine.stream), "cudaMemsetAsync");
  const std::size_t workspace_bytes = std::max(problem.forward_workspace(), problem.backward_workspace());
  const std::size_t reserve_bytes = problem.reserve();
  DeviceBuffer workspace(std::max<std::size_t>(workspace_bytes, 1)), reserve(std::max<std::size_t>(reserve_bytes, 1));
  auto forward = [&](int c) {
    problem.forward(in.x->part(static_cast<std::size_t>(c), in.tensor_bytes), out.get(), in.gamma, in.beta,
                    running_mean.floats(), running_var.floats(), saved_mean.floats(), saved_invstd.floats(), workspace,
                    workspace_bytes, reserve, reserve_bytes);
  };
  if (pass == CudnnBatchNormPass::kForwardTraining) return median_ms(forward, in.copies);
  // The backward reads the statistics and reserve space of a forward on the same x (every copy
  // of x holds the same values).
  forward(0);
  return median_ms(
      [&](int c) {
        const std::size_t copy = static_cast<std::size_t>(c);
        problem.backward(in.x->part(copy, in.tensor_bytes), in.dy->part(copy, in.tensor_bytes), out.get(), in.gamma,
                         in.beta, dgamma.get(), dbeta.get(), saved_mean.floats(), saved_invstd.floats(), workspace,
                         workspace_bytes, reserve, reserve_bytes);
      },
      in.copies);
}

}  // namespace

std::string cudnn_description() {
  std::string why;
  const Cudnn* api = cudnn(&why);
  if (api == nullptr) return "cuDNN not loadable at run time (" + why + "): no cuDNN comparison";
  const std::size_t version = api->GetVersion();
  return "cuDNN " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100) +
         " loaded at run time: its times are the faster of its SPATIAL and SPATIAL_PERSISTENT modes";
}

double cudnn_batch_norm_ms(CudnnBatchNormPass pass, const CudnnBatchNormInputs& inputs) {
  if (cudnn() == nullptr) return 0.0;
  return std::min(time_mode(pass, inputs, CUDNN_BATCHNORM_SPATIAL),
                  time_mode(pass, inputs, CUDNN_BATCHNORM_SPATIAL_PERSISTENT));
}

}  // namespace bench
