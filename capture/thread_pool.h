// A fixed set of worker threads that run one indexed job at a time: forEach(count, fn) calls
// fn(worker, item) for every item in [0, count), spread over the workers, and returns when
// all are done. The worker index lets callers keep per-thread state (one zstd context per
// worker) without locks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace procsnap {

class ThreadPool final {
public:
  using Job = std::function<void(unsigned worker, size_t item)>;

  explicit ThreadPool(unsigned workers); // at least one
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(threads_.size()); }

  // Runs job over [0, count) and waits. Items are handed out in increasing order. Not
  // reentrant: one forEach at a time. job must not throw.
  void forEach(size_t count, const Job& job);
  // Starts job over [0, count) and returns at once; wait() blocks until it is done.
  void start(size_t count, Job job);
  void wait();

private:
  void workerLoop(unsigned worker);

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  Job job_;
  size_t count_ = 0;
  size_t next_ = 0;
  size_t finished_ = 0;
  bool stopping_ = false;
};

// The default number of compression threads: the CPUs this process may run on.
unsigned defaultJobCount();

} // namespace procsnap
