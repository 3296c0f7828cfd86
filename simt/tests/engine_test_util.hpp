// Helpers shared by the engine's tests: launching under a chosen order and asserting on the
// fault message a planted bug must produce.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "simt/device.hpp"
#include "simt/launch.hpp"

namespace simt_test {

inline simt::Options with_order(simt::Order order, std::uint64_t seed = 1) {
  simt::Options options = simt::current_options();
  options.order = order;
  options.seed = seed;
  return options;
}

template <class... Params, class... Args>
simt::LaunchResult run(simt::Order order, dim3 grid, dim3 block, void (*kernel)(Params...), Args&&... args) {
  simt::ScopedOptions scoped(with_order(order));
  simt::LaunchConfig config;
  config.grid = grid;
  config.block = block;
  config.name = "test_kernel";
  return simt::launch(config, kernel, std::forward<Args>(args)...);
}

// The launch failed, and its message names the fault and where it happened.
inline void expect_fault(const simt::LaunchResult& result, const std::string& fault, const std::string& where) {
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find(fault), std::string::npos) << result.message;
  EXPECT_NE(result.message.find(where), std::string::npos) << result.message;
}

constexpr simt::Order kAllOrders[] = {simt::Order::kForward, simt::Order::kReverse, simt::Order::kRandom};

}  // namespace simt_test
