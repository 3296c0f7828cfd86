// Launches kernels on the SIMT engine: the kernel's dynamic shared memory opt-in (as
// cudaFuncSetAttribute), the engine's launch, and a fault turned into EXECUTION_FAILED.
#pragma once

#include <string>
#include <utility>

#include "../launch_shape.hpp"
#include "../status.hpp"
#include "simt/launch.hpp"

namespace cunorm {

class SimtLauncher {
 public:
  explicit SimtLauncher(const simt::Target& target) : target_(target) {}

  template <class... Params, class... Args>
  Status launch(const LaunchShape& shape, void (*kernel)(Params...), Args&&... args) {
    if (shape.dynamic_shared_bytes > target_.shared_per_block) {
      std::string error;
      if (!simt::set_max_dynamic_shared_memory(simt::kernel_id(kernel), shape.dynamic_shared_bytes, &target_, &error)) {
        return Status::execution_failed(shape.label.text() + ": " + error);
      }
    }
    simt::LaunchConfig config;
    config.grid = shape.grid;
    config.block = shape.block;
    config.dynamic_shared_bytes = shape.dynamic_shared_bytes;
    config.cooperative = shape.cooperative;
    config.target = &target_;
    config.name = shape.label.family;
    config.label = &shape.label;
    const simt::LaunchResult result = simt::launch(config, kernel, std::forward<Args>(args)...);
    if (!result.ok) return Status::execution_failed(result.message);
    return Status::ok();
  }

 private:
  const simt::Target& target_;
};

}  // namespace cunorm
