// Sanitizers need to be told about every fiber switch; these wrappers compile to nothing in
// unsanitized builds.
//
// AddressSanitizer: each stack switch, or it takes a fiber's frames for a stack overflow of the
// thread.
//
// ThreadSanitizer (CUNORM_SANITIZE=thread, which builds the engine itself uninstrumented and
// defines CUNORM_SIMT_TSAN): every fiber is a TSan fiber, i.e. a thread of its own for race
// detection, and switches between fibers carry no happens-before edge; the engine adds exactly
// the edges CUDA promises: a fiber's start follows its launch's setup, every participant of a
// completed __syncthreads, __syncwarp or grid barrier follows everything every other participant
// did before it, and the scheduler follows every fiber of a block once the block is done (so the
// host sees the results). A kernel that shares memory between threads without one of those
// barriers is then reported as a data race with both source lines.
#pragma once

#include <cstddef>

// GCC defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang 14 (the fuzzer build,
// tests/fuzz/) only answers __has_feature(address_sanitizer); both must get the annotations.
#if defined(__SANITIZE_ADDRESS__)
#define CUNORM_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUNORM_SIMT_ASAN 1
#endif
#endif

#if defined(CUNORM_SIMT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CUNORM_SIMT_TSAN)
#include <sanitizer/tsan_interface.h>
extern "C" void __tsan_ignore_thread_begin();  // in TSan's runtime, not in its public header
extern "C" void __tsan_ignore_thread_end();
#endif

namespace simt::detail {

#if defined(CUNORM_SIMT_ASAN)
// fake_stack_save == nullptr announces that the current fiber will never be resumed.
inline void start_switch(void** fake_stack_save, const void* bottom, std::size_t size) {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
inline void finish_switch(void* fake_stack, const void** bottom_old, std::size_t* size_old) {
  __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
}
inline void unpoison_memory(void* address, std::size_t size) { ASAN_UNPOISON_MEMORY_REGION(address, size); }
#else
inline void start_switch(void**, const void*, std::size_t) {}
inline void finish_switch(void*, const void**, std::size_t*) {}
inline void unpoison_memory(void*, std::size_t) {}
#endif

#if defined(CUNORM_SIMT_TSAN)
inline void* tsan_current_fiber() { return __tsan_get_current_fiber(); }
inline void* tsan_create_fiber() { return __tsan_create_fiber(0); }
inline void tsan_destroy_fiber(void* fiber) { __tsan_destroy_fiber(fiber); }
// Makes `fiber` TSan's current context. With synchronize, everything the current context did
// happens before everything `fiber` does next.
inline void tsan_switch(void* fiber, bool synchronize) {
  __tsan_switch_to_fiber(fiber, synchronize ? 0 : __tsan_switch_to_fiber_no_sync);
}
// While the engine works on a fiber's behalf (device_api.cpp), its memory accesses are no access
// of the fiber's CUDA thread.
inline void tsan_ignore_begin() { __tsan_ignore_thread_begin(); }
inline void tsan_ignore_end() { __tsan_ignore_thread_end(); }
#else
inline void* tsan_current_fiber() { return nullptr; }
inline void* tsan_create_fiber() { return nullptr; }
inline void tsan_destroy_fiber(void*) {}
inline void tsan_switch(void*, bool) {}
inline void tsan_ignore_begin() {}
inline void tsan_ignore_end() {}
#endif

#if defined(CUNORM_SIMT_ASAN) || defined(CUNORM_SIMT_TSAN)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#if defined(CUNORM_SIMT_TSAN)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace simt::detail
