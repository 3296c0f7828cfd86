// The C++ layer in a complete program: a cunorm::BatchNorm module (PyTorch's nn.BatchNorm2d
// semantics: momentum 0.1, unbiased running variance) trained for 60 steps on NHWC float32
// batches, then switched to eval mode, on whatever backend is usable. Errors are exceptions
// (cunorm::Error) carrying the status and the library's message. Build against an installed
// cunorm (PREFIX), on one line:
//
//   c++ -std=c++17 batch_norm_training.cpp -I$PREFIX/include -I/usr/local/cuda/include
//       -L$PREFIX/lib -lcunorm -Wl,-rpath,$PREFIX/lib -o batch_norm_training
//
// or with CMake: find_package(cunorm) and target_link_libraries(app PRIVATE cunorm::cunorm).
#include <cstdio>
#include <cunorm/cunorm.hpp>
#include <random>
#include <vector>

int main() {
  try {
    constexpr int64_t kBatch = 8, kChannels = 3, kSpatial = 5 * 5, kCount = kBatch * kChannels * kSpatial;
    constexpr int kSteps = 60;  // momentum 0.1: the running statistics move 99.8% of the way
    cunorm::Handle handle;      // CUDA if a GPU is usable, else the SIMT engine
    cunorm::BatchNorm bn(handle, kChannels);
    cunorm::DeviceBuffer x(handle, kCount * sizeof(float)), y(handle, kCount * sizeof(float));
    cunorm::DeviceBuffer dy(handle, kCount * sizeof(float)), dx(handle, kCount * sizeof(float));
    std::printf("backend: %s\n", handle.backend() == CUNORM_BACKEND_CUDA ? "CUDA" : "SIMT");

    // Channel k of every batch is drawn around mean k with spread 1 + k.
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> host(kCount);
    for (int step = 0; step < kSteps; ++step) {
      for (int64_t i = 0; i < kCount; ++i) {
        const int64_t channel = i % kChannels;  // NHWC: channels are innermost
        host[i] = static_cast<float>(channel) + static_cast<float>(1 + channel) * normal(rng);
      }
      x.upload(host);
      bn.forward(x.data(), y.data(), CUNORM_LAYOUT_NHWC, kBatch, kSpatial, CUNORM_FLOAT32);
      dy.upload(std::vector<float>(kCount, 1.0f / kCount));
      bn.backward(dy.data(), dx.data());
    }
    // The running statistics live in device memory: copied back with a checked C call.
    std::vector<float> running_mean(kChannels), running_var(kChannels);
    cunorm::check(cunormMemcpyToHost(handle.get(), running_mean.data(), bn.running_mean(), kChannels * sizeof(float)),
                  handle.get());
    cunorm::check(cunormMemcpyToHost(handle.get(), running_var.data(), bn.running_var(), kChannels * sizeof(float)),
                  handle.get());
    std::printf("after %d steps (channel k of the data: mean k, variance (1 + k)^2):\n", kSteps);
    for (int64_t k = 0; k < kChannels; ++k) {
      std::printf("  channel %lld: running mean %6.3f, running var %6.3f\n", static_cast<long long>(k), running_mean[k],
                  running_var[k]);
    }
    bn.eval();  // normalizes with the running statistics from here on
    bn.forward(x.data(), y.data(), CUNORM_LAYOUT_NHWC, kBatch, kSpatial, CUNORM_FLOAT32);
    const std::vector<float> out = y.download<float>(kCount);
    std::printf("eval-mode y[0..2] = %.3f %.3f %.3f\n", out[0], out[1], out[2]);
    return 0;
  } catch (const cunorm::Error& e) {
    std::fprintf(stderr, "cunorm error: %s\n", e.what());
    return 1;
  }
}
