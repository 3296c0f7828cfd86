// The worker-thread pool (see worker_pool.hpp). Its threads wait on one queue of copies of
// launch jobs. The pool lives until the process exits (its threads never end, so nothing may
// destroy what they wait on); fork() hands the child a fresh, empty pool, since the child has
// none of the parent's threads and the parent's condition variables count their waiters.
#include "worker_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace simt::detail {
namespace {

struct Copy {
  const std::function<void()>* job = nullptr;
  bool started = false;
  bool done = false;
};

struct Pool {
  std::mutex mutex;  // guards everything below and the Copy objects queued or running
  std::condition_variable work_queued;
  std::condition_variable copy_done;
  std::deque<Copy*> queue;
  int threads = 0;
};

Pool* current_pool = nullptr;  // replaced, never destroyed, in a child after fork()

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

void lock_for_fork() { current_pool->mutex.lock(); }
void unlock_after_fork() { current_pool->mutex.unlock(); }
// The parent's pool stays allocated in the child (its mutex held, its waiters gone): reachable
// through this list, so leak checkers do not count it.
void start_over_in_child() {
  static std::vector<Pool*>* abandoned = new std::vector<Pool*>();  // lives until exit
  abandoned->push_back(current_pool);
  current_pool = new Pool();
}

Pool& pool() {
  static std::once_flag created;
  std::call_once(created, [] {
    current_pool = new Pool();
    pthread_atfork(lock_for_fork, unlock_after_fork, start_over_in_child);
  });
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
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    for (Copy& copy : helpers) {
      copy.job = &job;
      p.queue.push_back(&copy);
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
  // Withdraws the copies that did not start and waits for the others, also when job() throws:
  // the queue must not keep pointers into this frame.
  struct Finish {
    Pool& p;
    std::vector<Copy>& helpers;
    ~Finish() {
      std::unique_lock<std::mutex> lock(p.mutex);
      for (Copy& copy : helpers) {
        if (!copy.started) p.queue.erase(std::find(p.queue.begin(), p.queue.end(), &copy));
      }
      p.copy_done.wait(lock, [this] {
        return std::all_of(helpers.begin(), helpers.end(), [](const Copy& c) { return !c.started || c.done; });
      });
    }
  } finish{p, helpers};
  job();
}

}  // namespace simt::detail
