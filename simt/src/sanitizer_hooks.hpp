// AddressSanitizer needs to be told about every stack switch, or it takes a fiber's frames for
// a stack overflow of the thread; these wrappers compile to nothing in unsanitized builds.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace simt::detail {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedBuild = true;
// fake_stack_save == nullptr announces that the current fiber will never be resumed.
inline void start_switch(void** fake_stack_save, const void* bottom, std::size_t size) {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
inline void finish_switch(void* fake_stack, const void** bottom_old, std::size_t* size_old) {
  __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
}
inline void unpoison_memory(void* address, std::size_t size) { ASAN_UNPOISON_MEMORY_REGION(address, size); }
#else
inline constexpr bool kSanitizedBuild = false;
inline void start_switch(void**, const void*, std::size_t) {}
inline void finish_switch(void*, const void**, std::size_t*) {}
inline void unpoison_memory(void*, std::size_t) {}
#endif

}  // namespace simt::detail
