// Thread safety as the README states it. (1) Host threads that each own a handle run a mix of ops
// at the same time (LayerNorm and RMSNorm forward and backward, BatchNorm training with running
// statistics and its backward, calibration), on SIMT and, when a GPU is usable, on CUDA with a
// stream per thread; every result must be bitwise the one a single thread computed (the library is
// deterministic), and that single-threaded run matches the float64 reference. (2) Threads sharing
// one handle, their calls never overlapping, each read their own last error message.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef CUNORM_TEST_CUDA_STREAMS
#include <cuda_runtime_api.h>
#endif

#include "support/backend_fixture.hpp"
#include "support/batch_norm_case.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 3;

HostArray as_array(const std::vector<float>& values) {
  HostArray out(CUNORM_FLOAT32, values.size());
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.byte_size());
  return out;
}

// Thread `t`'s mix of ops on `handle`; every output in order. With check_reference, each result
// is also compared with the float64 reference.
std::vector<HostArray> workload(cunormHandle_t handle, int t, bool check_reference) {
  std::vector<HostArray> outputs;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = static_cast<uint64_t>(100 * t + round);
    const DtypePair dtypes = kDtypePairs[(t + round) % 5];
    const Norm norm = (t + round) % 2 == 0 ? Norm::kLayerNorm : Norm::kRmsNorm;
    const RowNormCase rows(norm, dtypes, 5 + t, 96 + 37 * round, true, 1e-5f, seed);
    const ForwardResult forward = rows.forward(handle);
    const BackwardResult backward = rows.backward(handle, forward, true, true);
    if (check_reference) {
      rows.expect_forward_matches_reference(forward);
      rows.expect_backward_matches_reference(forward, backward);
    }
    outputs.insert(outputs.end(), {forward.y, as_array(forward.mean), as_array(forward.rstd), backward.dx,
                                   backward.dgamma, backward.dbeta});

    const cunormLayout_t layout = round % 2 == 0 ? CUNORM_LAYOUT_NHWC : CUNORM_LAYOUT_NCHW;
    const BatchNormCase bn(layout, dtypes, 3 + t, 6 + round, 7, true, 1e-5f, seed);
    const RunningStatistics running{std::vector<float>(static_cast<std::size_t>(bn.c), 0.25f),
                                    std::vector<float>(static_cast<std::size_t>(bn.c), 1.5f)};
    const TrainingResult training = bn.training(handle, 0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running);
    const GradientResult gradients = bn.backward(handle, training.saved_mean, training.saved_invstd, true, true);
    if (check_reference) {
      bn.expect_training_matches_reference(0.1f, CUNORM_RUNNING_VAR_UNBIASED, &running, training);
      bn.expect_backward_matches_reference(training.saved_mean, training.saved_invstd, gradients);
    }
    outputs.insert(outputs.end(), {training.y, as_array(training.saved_mean), as_array(training.saved_invstd),
                                   as_array(training.running_mean), as_array(training.running_var), gradients.dx,
                                   gradients.dgamma, gradients.dbeta});

    cunormBatchNormCalibration_t calib = nullptr;
    EXPECT_EQ(cunormBatchNormCalibrationCreate(handle, bn.c, &calib), CUNORM_STATUS_SUCCESS);
    const DeviceArray d_x(handle, bn.x);
    HostArray stats(CUNORM_FLOAT32, static_cast<std::size_t>(2 * bn.c));
    const DeviceArray d_stats(handle, stats);
    EXPECT_EQ(cunormBatchNormCalibrationAccumulate(handle, calib, layout, bn.n, bn.s, dtypes.dtype, d_x.data()),
              CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormBatchNormCalibrationFinalize(handle, calib, d_stats.as_floats(), d_stats.as_floats() + bn.c),
              CUNORM_STATUS_SUCCESS);
    EXPECT_EQ(cunormBatchNormCalibrationDestroy(handle, calib), CUNORM_STATUS_SUCCESS);
    outputs.push_back(d_stats.download());
  }
  return outputs;
}

class ThreadSafety : public BackendParamTest<cunormBackend_t> {};

TEST_P(ThreadSafety, HandlePerThreadRunsConcurrently) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  std::vector<std::vector<HostArray>> expected;
  for (int t = 0; t < kThreads; ++t) expected.push_back(workload(handle_, t, true));
  ASSERT_FALSE(HasFailure());

  std::vector<std::vector<HostArray>> actual(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      cunormHandle_t own = nullptr;
      ASSERT_EQ(cunormCreate(&own, GetParam()), CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(nullptr);
#ifdef CUNORM_TEST_CUDA_STREAMS
      cudaStream_t stream = nullptr;
      if (GetParam() == CUNORM_BACKEND_CUDA) {
        ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
        EXPECT_EQ(cunormSetStream(own, stream), CUNORM_STATUS_SUCCESS);
      }
#endif
      actual[static_cast<std::size_t>(t)] = workload(own, t, false);
      EXPECT_EQ(cunormDestroy(own), CUNORM_STATUS_SUCCESS);
#ifdef CUNORM_TEST_CUDA_STREAMS
      EXPECT_TRUE(stream == nullptr || cudaStreamDestroy(stream) == cudaSuccess);
#endif
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    const auto& want = expected[static_cast<std::size_t>(t)];
    const auto& got = actual[static_cast<std::size_t>(t)];
    ASSERT_EQ(got.size(), want.size()) << "thread " << t;
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(want[i].bitwise_equal(got[i])) << "thread " << t << " output " << i;
    }
  }
}

// Waits until all kThreads threads arrived.
class Rendezvous {
 public:
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int generation = generation_;
    if (++arrived_ == kThreads) {
      arrived_ = 0;
      ++generation_;
      all_.notify_all();
    } else {
      all_.wait(lock, [&] { return generation_ != generation; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_;
  int arrived_ = 0;
  int generation_ = 0;
};

// Calls on the shared handle never overlap (a mutex), but every thread fails before any reads
// its message back: each must still read its own.
TEST_P(ThreadSafety, SharedHandleKeepsAMessagePerThread) {
  CUNORM_OPEN_BACKEND_OR_SKIP(GetParam());
  std::mutex calls;
  Rendezvous rendezvous;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        const int64_t rows = -1 - t - kThreads * round;
        {
          std::lock_guard<std::mutex> lock(calls);
          EXPECT_EQ(cunormLayerNormForward(handle_, rows, 8, CUNORM_FLOAT32, CUNORM_FLOAT32, nullptr, nullptr, nullptr,
                                           1e-5f, nullptr, nullptr, nullptr),
                    CUNORM_STATUS_INVALID_VALUE);
        }
        rendezvous.arrive_and_wait();
        {
          std::lock_guard<std::mutex> lock(calls);
          EXPECT_EQ(std::string(cunormGetLastErrorMessage(handle_)), "rows must be >= 0, got " + std::to_string(rows))
              << "thread " << t;
        }
        rendezvous.arrive_and_wait();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

std::string backend_name(const ::testing::TestParamInfo<cunormBackend_t>& info) { return backend_label(info.param); }

INSTANTIATE_TEST_SUITE_P(All, ThreadSafety, ::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA), backend_name);

}  // namespace
}  // namespace cunorm_test
