// What a host thread sets for the launches it makes, each for as long as an object lives: the
// engine's options (ScopedOptions, else the CUNORM_SIMT_* environment variables), a launch
// recorder and a block window; launch.cpp reads them through the accessors of engine.hpp.
#include <cstdlib>
#include <string>

#include "engine.hpp"

namespace simt {
namespace {

thread_local const Options* tls_options = nullptr;
thread_local LaunchRecorder* tls_recorder = nullptr;
thread_local ScopedBlockWindow* tls_window = nullptr;

bool parse_unsigned(const char* text, std::uint64_t* value) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  *value = std::strtoull(text, &end, 10);
  return *end == '\0' && text[0] != '-';
}
}  // namespace

const char* order_name(Order order) {
  switch (order) {
    case Order::kForward: return "forward";
    case Order::kReverse: return "reverse";
    case Order::kRandom: return "random";
  }
  return "unknown";
}

Options environment_options(std::string* error) {
  Options options;
  std::string problems;
  if (const char* order = std::getenv("CUNORM_SIMT_ORDER")) {
    const std::string value = order;
    if (value == "forward")
      options.order = Order::kForward;
    else if (value == "reverse")
      options.order = Order::kReverse;
    else if (value == "random")
      options.order = Order::kRandom;
    else
      problems += "CUNORM_SIMT_ORDER must be forward, reverse or random, got \"" + value + "\"; ";
  }
  std::uint64_t number = 0;
  if (const char* seed = std::getenv("CUNORM_SIMT_SEED")) {
    if (parse_unsigned(seed, &number))
      options.seed = number;
    else
      problems += std::string("CUNORM_SIMT_SEED must be a non-negative integer, got \"") + seed + "\"; ";
  }
  if (const char* workers = std::getenv("CUNORM_SIMT_WORKERS")) {
    if (parse_unsigned(workers, &number) && number >= 1 && number <= 256)
      options.workers = static_cast<int>(number);
    else
      problems += std::string("CUNORM_SIMT_WORKERS must be an integer from 1 to 256, got \"") + workers + "\"; ";
  }
  if (const char* stack = std::getenv("CUNORM_SIMT_STACK_KB")) {
    if (parse_unsigned(stack, &number) && number >= 16 && number <= 65536)
      options.stack_bytes = number * 1024;
    else
      problems += std::string("CUNORM_SIMT_STACK_KB must be an integer from 16 to 65536, got \"") + stack + "\"; ";
  }
  if (error != nullptr) *error = problems.empty() ? "" : problems.substr(0, problems.size() - 2);
  return options;
}

Options current_options() { return tls_options != nullptr ? *tls_options : environment_options(nullptr); }

ScopedOptions::ScopedOptions(const Options& options) : options_(options), previous_(tls_options) {
  tls_options = &options_;
}
ScopedOptions::~ScopedOptions() { tls_options = previous_; }

LaunchRecorder::LaunchRecorder(Mode mode) : mode_(mode), previous_(tls_recorder) { tls_recorder = this; }

LaunchRecorder::~LaunchRecorder() { tls_recorder = previous_; }

bool launches_run() { return tls_recorder == nullptr || tls_recorder->mode() == LaunchRecorder::Mode::kRun; }

ScopedBlockWindow::ScopedBlockWindow(Selector select) : select_(std::move(select)), previous_(tls_window) {
  tls_window = this;
}
ScopedBlockWindow::~ScopedBlockWindow() { tls_window = previous_; }

namespace detail {

LaunchRecorder* active_recorder() { return tls_recorder; }
ScopedBlockWindow* active_block_window() { return tls_window; }

}  // namespace detail
}  // namespace simt
