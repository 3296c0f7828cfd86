// The worker-thread pool (see worker_pool.hpp). Its threads wait on one queue of copies of
// launch jobs. The pool lives until the process exits (its threads never end, so nothing may
// destroy what they wait on); a child after fork() leaves its parent's pool and creates its own
// on its first launch, since the child has none of the parent's threads and the parent's
// condition variables count their waiters.
#include "worker_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace simt::detail {
namespace {

struct Copy {
  const std::function<void()>* job = nullptr;
  bool queued = false;
  bool started = false;
  bool done = false;
};

struct Pool {
  std::mutex mutex;  // guards everything below and the Copy objects queued or running
  std::condition_variable work_queued;
  std::condition_variable copy_done;
  std::deque<Copy*> queue;
  int threads = 0;
  Pool* abandoned_before = nullptr;  // the next of abandoned_pools
};

// The pool is created on first need under `creation` rather than by std::call_once: an
// exhausted heap makes creating it throw, and a pthread_once left by an exception (as
// ThreadSanitizer's interceptor leaves it) blocks every later caller; here the next launch tries
// again.
std::mutex creation;              // guards the three below
Pool* current_pool = nullptr;     // cleared, never destroyed, in a child after fork()
Pool* abandoned_pools = nullptr;  // the parents' pools in a child, reachable for leak checkers
bool fork_handlers_installed = false;

void serve(Pool* pool) {
  std::unique_lock<std::mutex> lock(pool->mutex);
  for (;;) {
    pool->work_queued.wait(lock, [pool] { return !pool->queue.empty(); });
    Copy* copy = pool->queue.front();
    pool->queue.pop_front();
    copy->started = true;
    lock.unlock();
    (*copy->job)();
    lock.lock();
    copy->done = true;
    pool->copy_done.notify_all();
  }
}

void lock_for_fork() {
  creation.lock();
  if (current_pool != nullptr) current_pool->mutex.lock();
}
void unlock_after_fork() {
  if (current_pool != nullptr) current_pool->mutex.unlock();
  creation.unlock();
}
// The parent's pool stays allocated in the child (its mutex held, its waiters gone); the
// child's first launch creates its own. Allocates nothing, since nothing here may throw.
void start_over_in_child() {
  if (current_pool != nullptr) {
    current_pool->abandoned_before = abandoned_pools;
    abandoned_pools = current_pool;
    current_pool = nullptr;
  }
  creation.unlock();
}

Pool& pool() {
  std::lock_guard<std::mutex> lock(creation);
  if (!fork_handlers_installed) {
    if (pthread_atfork(lock_for_fork, unlock_after_fork, start_over_in_child) != 0) throw std::bad_alloc();  // ENOMEM
    fork_handlers_installed = true;
  }
  if (current_pool == nullptr) current_pool = new Pool();
  return *current_pool;
}

}  // namespace

void run_on_workers(int copies, const std::function<void()>& job) {
  if (copies <= 1) {
    job();
    return;
  }
  Pool& p = pool();
  std::vector<Copy> helpers(static_cast<std::size_t>(copies - 1));
  // Withdraws the copies queued but not started and waits for the others, also when queueing
  // them, creating threads or job() throws: the queue must not keep pointers into this frame.
  struct Finish {
    Pool& p;
    std::vector<Copy>& helpers;
    ~Finish() {
      std::unique_lock<std::mutex> lock(p.mutex);
      for (Copy& copy : helpers) {
        if (copy.queued && !copy.started) p.queue.erase(std::find(p.queue.begin(), p.queue.end(), &copy));
      }
      p.copy_done.wait(lock, [this] {
        return std::all_of(helpers.begin(), helpers.end(), [](const Copy& c) { return !c.started || c.done; });
      });
    }
  } finish{p, helpers};
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    for (Copy& copy : helpers) {
      copy.job = &job;
      p.queue.push_back(&copy);
      copy.queued = true;
    }
    // Enough threads for every copy queued, this launch's and other host threads'.
    while (p.threads < static_cast<int>(p.queue.size())) {
      try {
        std::thread(serve, &p).detach();
      } catch (const std::system_error&) {
        break;  // the caller's copy does the work the missing threads would have shared
      }
      ++p.threads;
    }
  }
  p.work_queued.notify_all();
  job();
}

}  // namespace simt::detail
