// The launch configuration of one kernel, as the planners compute it for either backend.
#pragma once

#include <vector_types.h>

#include <cstddef>

#include "simt/launch_label.hpp"

namespace cunorm {

struct LaunchShape {
  dim3 grid{1, 1, 1};
  dim3 block{1, 1, 1};
  std::size_t dynamic_shared_bytes = 0;
  bool cooperative = false;  // every block resident at once, grid barriers allowed
  simt::LaunchLabel label;   // what runs, as fields (static strings, integers): records, error messages
};

}  // namespace cunorm
