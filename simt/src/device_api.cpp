// The functions device.hpp declares: each forwards to the worker running the calling fiber.
// Also the perturbed intrinsics and the stack-overflow handler, which need that worker too.
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <mutex>

#include "engine.hpp"
#include "sanitizer_hooks.hpp"

namespace simt {
namespace detail {
namespace {

// ThreadSanitizer builds: what the engine does on a fiber's behalf is no memory access of that
// CUDA thread (the engine's state shared by the fibers of a worker, the NaN fill of shared
// memory), but TSan's interceptors (memset, memmove in std::vector) would count it as one.
struct EngineCall {
  EngineCall() { tls_worker->engine_call_begin(); }
  ~EngineCall() { tls_worker->engine_call_end(); }
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;
};

}  // namespace
}  // namespace detail

void grid_sync(SourceLocation loc) {
  detail::EngineCall call;
  detail::tls_worker->grid_barrier(loc);
}

namespace detail {

std::uint64_t warp_collective(Collective kind, unsigned mask, std::uint64_t value, int operand, int width,
                              SourceLocation loc) {
  EngineCall call;
  return tls_worker->warp_collective(kind, mask, value, operand, width, loc);
}

int block_barrier(BlockBarrier kind, int predicate, SourceLocation loc) {
  EngineCall call;
  return tls_worker->block_barrier(kind, predicate, loc);
}

void* static_shared(const void* key, std::size_t bytes, std::size_t align, SourceLocation loc) {
  EngineCall call;
  return tls_worker->static_shared(key, bytes, align, loc);
}

void* dynamic_shared() { return tls_worker->dynamic_shared(); }

void global_access(const void* address, std::size_t bytes, std::size_t align, bool write, SourceLocation loc) {
  EngineCall call;
  tls_worker->global_access(address, bytes, align, write, loc);
}

void block_memory_fence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

void memory_fence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  EngineCall call;
  tls_worker->thread_fence();
}

void trap(const char* what, SourceLocation loc) { tls_worker->fail(FaultText(what), loc); }

float approximate(float exact, int max_ulp_error, std::uint32_t input_bits) {
  const Worker* worker = tls_worker;
  if (worker == nullptr || worker->options().order != Order::kRandom || !std::isfinite(exact)) return exact;
  std::uint64_t h = (static_cast<std::uint64_t>(input_bits) ^ worker->options().seed) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 29;
  const int steps = static_cast<int>(h % static_cast<std::uint64_t>(2 * max_ulp_error + 1)) - max_ulp_error;
  float result = exact;
  for (int i = 0; i < (steps < 0 ? -steps : steps); ++i) {
    result = std::nextafter(result, steps < 0 ? -INFINITY : INFINITY);
  }
  return result;
}

// ---- Stack overflow -------------------------------------------------------------------------

namespace {

struct sigaction previous_segv_action;

void on_segv(int signal, siginfo_t* info, void* context) {
  Worker* worker = tls_worker;
  if (worker != nullptr) worker->handle_stack_fault(info->si_addr);  // does not return if it was ours
  // Not a fiber's guard page: restore whoever handled SIGSEGV before and let the faulting
  // instruction run again into that handler.
  sigaction(SIGSEGV, &previous_segv_action, nullptr);
  (void)signal;
  (void)context;
}

// The signal stack of this thread; freed when the thread ends.
struct AlternateStack {
  std::unique_ptr<char[]> memory;
  AlternateStack() : memory(new char[kBytes]) {
    stack_t stack{};
    stack.ss_sp = memory.get();
    stack.ss_size = kBytes;
    sigaltstack(&stack, nullptr);
  }
  ~AlternateStack() {
    stack_t disable{};
    disable.ss_flags = SS_DISABLE;
    sigaltstack(&disable, nullptr);
  }
  static constexpr std::size_t kBytes = 64 * 1024;
};

}  // namespace

void prepare_thread_for_fibers() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    // SA_NODEFER: the handler leaves by switching to the scheduler, never by returning, so the
    // kernel would otherwise keep SIGSEGV blocked on this thread forever.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv_action);
  });
  thread_local AlternateStack alternate_stack;
}

}  // namespace detail
}  // namespace simt
