// The engine's worker threads (simt/src/worker_pool.hpp): a launch's helper threads outlive it
// and serve the next launches, host threads launching at once share them, and a child process
// forked after launches (as a PyTorch DataLoader worker is) launches on threads of its own.
#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine_test_util.hpp"

namespace {

constexpr unsigned kBlocks = 16;

long os_thread_id() { return static_cast<long>(syscall(SYS_gettid)); }

// Each block records the OS thread that ran it; block 0 then waits (up to 60 s, ample for a new
// thread to start on a loaded machine) until another block ran on a different thread, so every
// launch of it uses at least two workers.
void record_threads(std::atomic<long>* thread_of_block) {
  const long self = os_thread_id();
  thread_of_block[blockIdx.x].store(self);
  if (blockIdx.x != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    for (unsigned b = 1; b < gridDim.x; ++b) {
      const long other = thread_of_block[b].load();
      if (other != 0 && other != self) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The OS threads of the launch other than the caller's; empty when the launch failed or did not
// spread (a failure the callers report).
std::set<long> helper_threads(int workers) {
  std::vector<std::atomic<long>> thread_of_block(kBlocks);
  for (std::atomic<long>& t : thread_of_block) t.store(0);
  simt::Options options = simt::current_options();
  options.workers = workers;
  simt::ScopedOptions scoped(options);
  simt::LaunchConfig config;
  config.grid = dim3(kBlocks);
  config.block = dim3(1);
  config.name = "record_threads";
  std::set<long> helpers;
  if (!simt::launch(config, record_threads, thread_of_block.data()).ok) return helpers;
  for (const std::atomic<long>& t : thread_of_block) {
    if (t.load() != 0 && t.load() != os_thread_id()) helpers.insert(t.load());
  }
  return helpers;
}

std::set<long> live_threads() {
  std::set<long> ids;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ids.insert(std::stol(entry->d_name));
    }
    closedir(dir);
  }
  return ids;
}

TEST(WorkerPool, HelperThreadsOutliveTheLaunchAndServeTheNext) {
  const std::set<long> first = helper_threads(4);
  ASSERT_FALSE(first.empty()) << "the launch did not run on a second thread";
  const std::set<long> alive = live_threads();
  for (long id : first) EXPECT_EQ(alive.count(id), 1u) << "helper thread " << id << " ended with its launch";
  for (int launch = 0; launch < 20; ++launch) {
    const std::set<long> later = helper_threads(4);
    ASSERT_FALSE(later.empty());
    for (long id : later) EXPECT_EQ(alive.count(id), 1u) << "launch " << launch << " started thread " << id;
  }
  EXPECT_EQ(live_threads(), alive);
}

void add_block_index(unsigned* sum) {
  if (threadIdx.x == 0) __atomic_fetch_add(sum, blockIdx.x, __ATOMIC_RELAXED);
}

TEST(WorkerPool, HostThreadsLaunchingAtOnceShareIt) {
  std::vector<std::thread> hosts;
  std::atomic<int> wrong{0};
  for (int h = 0; h < 4; ++h) {
    hosts.emplace_back([&wrong] {
      simt::Options options = simt::current_options();
      options.workers = 3;
      simt::ScopedOptions scoped(options);
      for (int launch = 0; launch < 25; ++launch) {
        unsigned sum = 0;
        simt::LaunchConfig config;
        config.grid = dim3(40);
        config.block = dim3(64);
        config.name = "add_block_index";
        if (!simt::launch(config, add_block_index, &sum).ok || sum != 40 * 39 / 2) ++wrong;
      }
    });
  }
  for (std::thread& host : hosts) host.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(WorkerPool, AForkedChildLaunchesOnThreadsOfItsOwn) {
  ASSERT_FALSE(helper_threads(4).empty());  // the parent's pool has threads
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Exit status 0 when the child's launch ran on helper threads that exist in the child; 2 when
    // it failed or ran on the calling thread alone; 3 when a helper is none of the child's threads.
    const std::set<long> helpers = helper_threads(4);
    const std::set<long> alive = live_threads();
    if (helpers.empty()) _exit(2);
    for (long id : helpers) {
      if (alive.count(id) == 0) _exit(3);
    }
    _exit(0);
  }
  int status = 0;
  pid_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the forked child's launch did not finish within 120 s";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "the child ended by signal " << WTERMSIG(status);
  EXPECT_NE(WEXITSTATUS(status), 2) << "the child's launch failed or ran on the calling thread alone";
  EXPECT_NE(WEXITSTATUS(status), 3) << "the child's launch ran on a thread the child does not have";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
