#include "capture/thread_pool.h"

#include <csignal>
#include <pthread.h>
#include <sched.h>

namespace procsnap {

ThreadPool::ThreadPool(unsigned workers) {
  if (workers == 0)
    workers = 1;
  threads_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i)
    threads_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& thread : threads_)
    thread.join();
}

void ThreadPool::start(size_t count, Job job) {
  {
    std::lock_guard lock(mutex_);
    job_ = std::move(job);
    count_ = count;
    next_ = 0;
    finished_ = 0;
  }
  work_ready_.notify_all();
}

void ThreadPool::wait() {
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [this] { return finished_ == count_; });
  job_ = nullptr;
}

void ThreadPool::forEach(size_t count, const Job& job) {
  start(count, job);
  wait();
}

void ThreadPool::workerLoop(unsigned worker) {
  // Termination signals must run their handler on the main thread: only the thread that
  // seized the target can detach it (see emergencyThawAll in frozen_process.h).
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  std::unique_lock lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stopping_ || next_ < count_; });
    if (stopping_)
      return;
    const size_t item = next_++;
    // Copy-free: job_ stays valid until every item finished (wait() resets it after).
    const Job& job = job_;
    lock.unlock();
    job(worker, item);
    lock.lock();
    if (++finished_ == count_)
      work_done_.notify_all();
  }
}

unsigned defaultJobCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0)
      return static_cast<unsigned>(count);
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : hardware;
}

} // namespace procsnap
