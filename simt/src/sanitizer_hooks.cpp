// ThreadSanitizer's happens-before edges (sanitizer_hooks.hpp): exactly those CUDA promises.
// Every function returns at once in builds without ThreadSanitizer.
#include "sanitizer_hooks.hpp"

#include "engine.hpp"

namespace simt::detail {

// Every participant of a completed barrier acquires what every other did before arriving: a chain
// of synchronizing TSan switches through all of them and round again. The switches only tell TSan
// whose context is current; no code runs on the other fibers. Called by the last to arrive.
void Worker::tsan_barrier_edges(Fiber* const* participants, std::size_t count) {
  if (!kThreadSanitizer) return;
  for (std::size_t i = 0; i < count; ++i) tsan_switch(participants[i]->tsan_fiber, true);
  for (std::size_t i = 0; i + 1 < count; ++i) tsan_switch(participants[i]->tsan_fiber, true);
  tsan_switch(current_->tsan_fiber, false);
}

// While the engine works for the running fiber (a device API call), TSan ignores its accesses.
void Worker::engine_call_begin() {
  if (!kThreadSanitizer) return;
  tsan_ignore_begin();
  ++current_->engine_calls;
}

void Worker::engine_call_end() {
  if (!kThreadSanitizer) return;
  --current_->engine_calls;
  tsan_ignore_end();
}

// After the resident blocks ran (or were abandoned at a fault): the scheduler, and through it
// the host and the next blocks of this worker, follows everything their fibers did.
void Worker::tsan_collect_blocks() {
  if (!kThreadSanitizer) return;
  for (Fiber* f : order_) {
    tsan_switch(f->tsan_fiber, false);
    tsan_switch(tsan_scheduler_, true);
  }
}

}  // namespace simt::detail
