// From the SIMT launch records: which variant serves which row length, that each activation
// element is read from global memory exactly once per call for every row length up to 65536 in
// every dtype (forward and backward, on the default sm_90 target and on sm_75 with its 64 KiB of
// shared memory per block), and that the vector paths use at least 90% of every sector; that
// block_registers rows past its grid are right and independent of the batch; and that rows too
// long for the GPU's shared memory take the uncached variants, correctly.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "simt/launch.hpp"
#include "support/backend_fixture.hpp"
#include "support/row_norm_case.hpp"

namespace cunorm_test {
namespace {

// A SIMT handle for the given target (CUNORM_SIMT_TARGET is read when a handle is created).
cunormHandle_t simt_handle(const char* target) {
  const char* old = std::getenv("CUNORM_SIMT_TARGET");
  const std::string saved = old != nullptr ? old : "";
  setenv("CUNORM_SIMT_TARGET", target, 1);
  cunormHandle_t handle = nullptr;
  EXPECT_EQ(cunormCreate(&handle, CUNORM_BACKEND_SIMT), CUNORM_STATUS_SUCCESS);
  if (old != nullptr) {
    setenv("CUNORM_SIMT_TARGET", saved.c_str(), 1);
  } else {
    unsetenv("CUNORM_SIMT_TARGET");
  }
  return handle;
}

std::string variant_of(const simt::LaunchRecord& record) { return record.label.variant; }

const simt::BufferTraffic& traffic(const simt::LaunchRecord& record, const std::string& buffer) {
  for (const simt::BufferTraffic& t : record.buffers) {
    if (t.name == buffer) return t;
  }
  ADD_FAILURE() << "no traffic for " << buffer;
  return record.buffers.front();
}

// Runs c's forward and then its backward, checks both against the reference, and returns the
// launches they made.
std::vector<simt::LaunchRecord> forward_and_backward(RowNormCase& c, cunormHandle_t handle) {
  simt::LaunchRecorder recorder;
  const ForwardResult saved = c.forward(handle);
  const BackwardResult grads = c.backward(handle, saved, true, true);
  c.expect_forward_matches_reference(saved);
  c.expect_backward_matches_reference(saved, grads);
  return recorder.records();
}

const int64_t kLengths[] = {1,    2,    3,    31,   32,   100,   511,   512,   513,   1000,  1024,
                            1025, 3000, 4096, 8192, 8193, 12345, 16384, 32768, 40000, 58000, 65536};

// The variant the plan must pick on sm_90 for a row of this length.
std::string expected_variant(bool forward, int64_t cols) {
  if (forward) return cols <= 1024 ? "warp_rows" : cols <= 8192 ? "block_registers" : "segments";
  return cols <= 512 ? "warp_rows" : "segments";
}

class RowNormVariants : public ::testing::TestWithParam<const char*> {};

TEST_P(RowNormVariants, EveryInputElementIsReadOnceUpTo65536) {
  const std::string target = GetParam();
  cunormHandle_t handle = simt_handle(target.c_str());
  ASSERT_NE(handle, nullptr);
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (const DtypePair& dtypes : kDtypePairs) {
      for (int64_t cols : kLengths) {
        SCOPED_TRACE(std::string(norm_label(norm)) + " " + dtypes.label() + " cols " + std::to_string(cols));
        const int64_t rows = 2;
        RowNormCase c(norm, dtypes, rows, cols, true, 1e-5f, static_cast<uint64_t>(cols));
        const std::uint64_t tensor = c.x.byte_size();
        const std::vector<simt::LaunchRecord> launches = forward_and_backward(c, handle);
        ASSERT_GE(launches.size(), 2u);
        const simt::LaunchRecord &fwd = launches[0], &bwd = launches[1];
        if (target == "sm_90") {
          EXPECT_EQ(variant_of(fwd), expected_variant(true, cols)) << fwd.name;
          EXPECT_EQ(variant_of(bwd), expected_variant(false, cols)) << bwd.name;
        } else {
          EXPECT_NE(variant_of(fwd), "uncached") << fwd.name;
          EXPECT_NE(variant_of(bwd), "uncached") << bwd.name;
        }
        EXPECT_EQ(traffic(fwd, "x").bytes_read, tensor) << fwd.name;
        EXPECT_EQ(traffic(fwd, "y").bytes_written, tensor) << fwd.name;
        EXPECT_EQ(traffic(fwd, "x").bytes_written + traffic(fwd, "y").bytes_read, 0u) << fwd.name;
        EXPECT_EQ(traffic(bwd, "x").bytes_read, tensor) << bwd.name;
        EXPECT_EQ(traffic(bwd, "dy").bytes_read, tensor) << bwd.name;
        EXPECT_EQ(traffic(bwd, "dx").bytes_written, tensor) << bwd.name;
        // Vector paths coalesce: at least 90% of every 32-byte sector they touch is used.
        for (const simt::LaunchRecord* r : {&fwd, &bwd}) {
          if (r->label.parameter("vec") == 1) continue;
          for (const simt::BufferTraffic& t : r->buffers) {
            if (t.name == "x" || t.name == "y" || t.name == "dy" || t.name == "dx") {
              EXPECT_GE(t.sector_efficiency(), 0.9) << r->name << " " << t.name;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

INSTANTIATE_TEST_SUITE_P(Targets, RowNormVariants, ::testing::Values("sm_90", "sm_75"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// More rows than the block_registers grid has blocks: a block takes two rows per iteration with
// 16-byte packs (ops/row_norm/row_norm_forward.cuh), and one where a row has no partner. Every row
// matches the reference, and row 0 (the first of a pair), row `grid` (the second) and the last
// row (alone in its iteration) are bitwise what they are when the row is the whole call: a row's
// result does not depend on which rows share its call. sm_75's 40 SMs keep the grid small.
TEST(RowNormVariants, BlockRegistersRowsPastTheGridMatchAndDoNotDependOnTheBatch) {
  cunormHandle_t handle = simt_handle("sm_75");
  ASSERT_NE(handle, nullptr);
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (const DtypePair& dtypes : kDtypePairs) {
      for (int64_t cols : {int64_t{2048}, int64_t{3000}, int64_t{3001}}) {
        SCOPED_TRACE(std::string(norm_label(norm)) + " " + dtypes.label() + " cols " + std::to_string(cols));
        int64_t grid = 0;
        {
          // The grid for many rows (1000, more than any sm_75 grid holds), recorded, not run.
          simt::LaunchRecorder plans(simt::LaunchRecorder::Mode::kRecordOnly);
          RowNormCase(norm, dtypes, 1000, cols, true, 1e-5f, 1).forward(handle);
          ASSERT_EQ(plans.records().size(), 1u);
          ASSERT_EQ(variant_of(plans.records()[0]), "block_registers") << plans.records()[0].name;
          grid = plans.records()[0].grid.x;
          ASSERT_LT(grid, 1000);
        }
        const int64_t rows = 2 * grid + 3;
        const RowNormCase batch(norm, dtypes, rows, cols, true, 1e-5f, static_cast<uint64_t>(cols));
        simt::LaunchRecorder recorder;
        const ForwardResult all = batch.forward(handle);
        ASSERT_EQ(recorder.records()[0].grid.x, grid) << recorder.records()[0].name;
        batch.expect_forward_matches_reference(all);
        const std::size_t row_bytes = static_cast<std::size_t>(cols) * element_size(dtypes.dtype);
        for (int64_t row : {int64_t{0}, grid, rows - 1}) {
          RowNormCase alone(norm, dtypes, 1, cols, true, 1e-5f, 0);
          std::memcpy(alone.x.data(), static_cast<const char*>(batch.x.data()) + row * row_bytes, row_bytes);
          alone.gamma = batch.gamma;
          alone.beta = batch.beta;
          const ForwardResult one = alone.forward(handle);
          EXPECT_EQ(std::memcmp(one.y.data(), static_cast<const char*>(all.y.data()) + row * row_bytes, row_bytes), 0)
              << "row " << row;
          EXPECT_EQ(one.rstd[0], all.rstd[static_cast<std::size_t>(row)]) << "row " << row;
          if (norm == Norm::kLayerNorm) {
            EXPECT_EQ(one.mean[0], all.mean[static_cast<std::size_t>(row)]) << "row " << row;
          }
        }
      }
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

// Rows longer than the whole GPU holds in shared memory take the uncached variants, which read x
// three times (LayerNorm) or twice (RMSNorm) forward, and x and dy twice backward. sm_75 holds at
// most 40 segments at once (40 SMs, one block of 64 KiB each), of at most about 8,190 float32
// elements (RMSNorm forward, the smallest footprint: x and gamma), so 400,000 elements take the
// uncached variants on any machine (the engine's cooperative-thread limit only lowers that
// capacity). Both vector widths: 400,000 is a multiple of 4 (vec=4) and 400,001 is not (vec=1).
TEST(RowNormUncached, LongRowsMatchTheReferenceAndReadWhatTheDocsSay) {
  cunormHandle_t handle = simt_handle("sm_75");
  ASSERT_NE(handle, nullptr);
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (int64_t cols : {int64_t{400000}, int64_t{400001}}) {
      SCOPED_TRACE(std::string(norm_label(norm)) + " cols " + std::to_string(cols));
      const int64_t rows = 3;
      RowNormCase c(norm, {CUNORM_FLOAT32, CUNORM_FLOAT32}, rows, cols, true, 1e-5f, static_cast<uint64_t>(cols));
      const std::uint64_t tensor = c.x.byte_size();
      const std::vector<simt::LaunchRecord> launches = forward_and_backward(c, handle);
      ASSERT_GE(launches.size(), 2u);
      const simt::LaunchRecord &fwd = launches[0], &bwd = launches[1];
      EXPECT_EQ(variant_of(fwd), "uncached") << fwd.name;
      EXPECT_EQ(variant_of(bwd), "uncached") << bwd.name;
      EXPECT_EQ(fwd.label.parameter("vec"), cols % 4 == 0 ? 4 : 1) << fwd.name;
      EXPECT_EQ(traffic(fwd, "x").bytes_read, (norm == Norm::kLayerNorm ? 3 : 2) * tensor) << fwd.name;
      EXPECT_EQ(traffic(fwd, "y").bytes_written, tensor) << fwd.name;
      EXPECT_EQ(traffic(bwd, "x").bytes_read, 2 * tensor) << bwd.name;
      EXPECT_EQ(traffic(bwd, "dy").bytes_read, 2 * tensor) << bwd.name;
      EXPECT_EQ(traffic(bwd, "dx").bytes_written, tensor) << bwd.name;
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

// The half types' uncached backward, with packs of 8 (16 bytes of x and dy, 32 bytes of float32
// partials per thread): float32 and same-type parameters. sm_75 holds at most about 164,000
// elements of a half-type backward segment (x and dy as 2 bytes, gamma and the two accumulators
// as 4), so 400,000 take the uncached backward; the forward may take another variant.
TEST(RowNormUncached, HalfTypesBackwardInPacksOfEight) {
  cunormHandle_t handle = simt_handle("sm_75");
  ASSERT_NE(handle, nullptr);
  for (Norm norm : {Norm::kLayerNorm, Norm::kRmsNorm}) {
    for (const DtypePair dtypes :
         {DtypePair{CUNORM_FLOAT16, CUNORM_FLOAT32}, DtypePair{CUNORM_BFLOAT16, CUNORM_BFLOAT16}}) {
      SCOPED_TRACE(std::string(norm_label(norm)) + " " + dtypes.label());
      const int64_t rows = 3, cols = 400000;
      RowNormCase c(norm, dtypes, rows, cols, true, 1e-5f, 11);
      const ForwardResult saved = c.forward(handle);
      simt::LaunchRecorder recorder;
      const BackwardResult grads = c.backward(handle, saved, true, true);
      c.expect_backward_matches_reference(saved, grads);
      ASSERT_GE(recorder.records().size(), 1u);
      const simt::LaunchRecord& bwd = recorder.records()[0];
      EXPECT_EQ(variant_of(bwd), "uncached") << bwd.name;
      EXPECT_EQ(bwd.label.parameter("vec"), 8) << bwd.name;
      EXPECT_EQ(traffic(bwd, "x").bytes_read, 2 * c.x.byte_size()) << bwd.name;
      EXPECT_EQ(traffic(bwd, "dx").bytes_written, c.x.byte_size()) << bwd.name;
    }
  }
  EXPECT_EQ(cunormDestroy(handle), CUNORM_STATUS_SUCCESS);
}

}  // namespace
}  // namespace cunorm_test
