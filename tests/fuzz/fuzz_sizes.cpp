// The API fuzzer's size rule (see fuzz_sizes.hpp).
#include "fuzz_sizes.hpp"

#include <algorithm>
#include <initializer_list>
#include <limits>

#include "fuzz_world.hpp"

namespace cunorm_fuzz {
namespace {

using cunorm_test::Args;
using cunorm_test::Entry;

constexpr std::int64_t kSlot = static_cast<std::int64_t>(kSlotBytes);

// Bytes of a buffer of the product of `sizes` (all >= 0) elements of element_bytes; false when they
// do not fit in 63 bits. A zero size makes it empty whatever the others are.
bool fits(std::initializer_list<std::int64_t> sizes, std::int64_t element_bytes, std::int64_t* bytes) {
  std::int64_t product = element_bytes;
  bool overflow = false;
  for (std::int64_t size : sizes) {
    if (size == 0) {
      *bytes = 0;
      return true;
    }
    overflow = overflow || __builtin_mul_overflow(product, size, &product);
  }
  *bytes = product;
  return !overflow;
}

// An unknown dtype is rejected by the library before any size is used: the largest element stands in.
std::int64_t element_bytes(int dtype) { return dtype == CUNORM_FLOAT16 || dtype == CUNORM_BFLOAT16 ? 2 : 4; }

// v (> 0) brought into [1, limit] keeping its remainder.
std::int64_t cut_positive(std::int64_t v, std::int64_t limit) { return v <= limit ? v : 1 + (v - 1) % limit; }

// Batch sizes n and s of channels of `channel_bytes` each (both > 0), cut until the tensor fits a slot.
void cut_batch(std::int64_t* n, std::int64_t* s, std::int64_t channel_bytes) {
  *s = cut_positive(*s, std::max<std::int64_t>(1, kSlot / channel_bytes));
  *n = cut_positive(*n, std::max<std::int64_t>(1, kSlot / (channel_bytes * *s)));
}

SizeVerdict fit_row(Entry entry, Args* a) {
  const std::int64_t e = element_bytes(a->dtype), p = element_bytes(a->param);
  std::int64_t tensor = 0, params = 0, stats = 0;
  if (a->rows < 0 || a->cols <= 0 || !fits({a->rows, a->cols}, e, &tensor) || !fits({a->cols}, p, &params) ||
      !fits({a->rows}, 4, &stats)) {
    return SizeVerdict::kRejected;
  }
  if (entry == Entry::kLayerNormWorkspaceSize) return SizeVerdict::kAsIs;
  a->cols = cut_positive(a->cols, kSlot / 4);
  const std::int64_t most_rows = std::min(kSlot / 4, kSlot / (a->cols * e));
  if (a->rows > most_rows) a->rows %= most_rows + 1;
  return SizeVerdict::kFitted;
}

SizeVerdict fit_batch(Entry entry, Args* a) {
  const std::int64_t e = element_bytes(a->dtype);
  std::int64_t tensor = 0, channel = 0;
  if (a->n < 0 || a->c <= 0 || a->s < 0 || !fits({a->n, a->c, a->s}, e, &tensor) || !fits({a->c}, 4, &channel)) {
    return SizeVerdict::kRejected;
  }
  if (entry == Entry::kBatchNormWorkspaceSize) return SizeVerdict::kAsIs;
  a->c = cut_positive(a->c, kSlot / 4);
  if (a->n > 0 && a->s > 0) cut_batch(&a->n, &a->s, a->c * e);
  return SizeVerdict::kFitted;
}

}  // namespace

SizeVerdict fit_sizes(Entry entry, Args* a, std::int64_t calib_c) {
  if (cunorm_test::is_row_norm(entry)) return fit_row(entry, a);
  if (cunorm_test::is_batch_norm(entry)) return fit_batch(entry, a);
  std::int64_t bytes = 0;
  switch (entry) {
    case Entry::kCalibrationCreate:  // the accumulators are float64, the running statistics float
      if (a->c <= 0 || !fits({a->c}, 8, &bytes)) return SizeVerdict::kRejected;
      a->c = cut_positive(a->c, kSlot / 4);
      return SizeVerdict::kFitted;
    case Entry::kCalibrationAccumulate:
      if (a->n < 0 || a->s < 0 || !fits({a->n, calib_c, a->s}, element_bytes(a->dtype), &bytes)) {
        return SizeVerdict::kRejected;
      }
      if (a->n > 0 && a->s > 0) cut_batch(&a->n, &a->s, calib_c * element_bytes(a->dtype));
      return SizeVerdict::kFitted;
    default: return SizeVerdict::kFitted;  // finalize and destroy take no size
  }
}

}  // namespace cunorm_fuzz
