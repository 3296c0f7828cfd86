// Global memory accesses of kernels: a null or misaligned access is the launch's error (a GPU
// faults); every access is counted, checked against the write shadow's unpublished stores
// (publication.cpp) and, while a TrafficWatch is active, attributed to its buffer and sector.
#include "engine.hpp"
#include "fault_text.hpp"

namespace simt::detail {

void Worker::publish_traffic() {
  std::lock_guard<std::mutex> lock(launch_.mutex);
  launch_.bytes_read += bytes_read_;
  launch_.bytes_written += bytes_written_;
  for (std::size_t i = 0; i < traffic_.size(); ++i) {
    launch_.traffic[i].bytes_read += traffic_[i].bytes_read;
    launch_.traffic[i].bytes_written += traffic_[i].bytes_written;
    launch_.traffic[i].requests += traffic_[i].requests;
    launch_.traffic[i].sectors += traffic_[i].sectors;
    launch_.traffic[i].request_bytes += traffic_[i].request_bytes;
  }
}
void Worker::global_access(const void* address, std::size_t bytes, std::size_t align, bool write, SourceLocation loc) {
  const char* what = write ? "store" : "load";
  if (address == nullptr) fail(FaultText() << "global " << what << " through a null pointer", loc);
  if (reinterpret_cast<std::uintptr_t>(address) % align != 0) {
    fail(FaultText() << "misaligned " << bytes << "-byte global " << what << " at " << Address{address} << " (needs "
                     << align << "-byte alignment; a GPU faults)",
         loc);
  }
  (write ? bytes_written_ : bytes_read_) += bytes;
  if (write) {
    note_global_store(address, bytes);
  } else {
    check_global_load(address, bytes, loc);
  }
  const char* at = static_cast<const char*>(address);
  for (std::size_t i = 0; i < launch_.watched.size(); ++i) {
    const char* begin = static_cast<const char*>(launch_.watched[i].begin);
    if (at >= begin && at < begin + launch_.watched[i].bytes) {
      (write ? traffic_[i].bytes_written : traffic_[i].bytes_read) += bytes;
      current_->block->sectors.record(current_->warp, current_->lane, loc, address, bytes, static_cast<int>(i));
      launch_.watch->touch(i, address, bytes, write);
      break;
    }
  }
}

}  // namespace simt::detail
