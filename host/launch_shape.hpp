// The launch configuration of one kernel, as the planners compute it for either backend.
#pragma once

#include <vector_types.h>

#include <cstddef>
#include <string>

namespace cunorm {

struct LaunchShape {
  dim3 grid{1, 1, 1};
  dim3 block{1, 1, 1};
  std::size_t dynamic_shared_bytes = 0;
  bool cooperative = false;  // every block resident at once, grid barriers allowed
  std::string name;          // what ran, for launch records and error messages
};

}  // namespace cunorm
