#include "tests/capture/forked_target.h"

#include "common/proc/files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <pthread.h>
#include <sstream>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace procsnap::test {

namespace {

constexpr uint64_t kPage = 4096;
// The child reports within milliseconds; generous for a loaded 2-core machine.
constexpr int kStartTimeoutMs = 10000;

void* mapOrDie(uint64_t size) {
  void* address = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address == MAP_FAILED)
    _exit(120);
  return address;
}

// patternByte(offset) is 1 + (offset * 131 + page * 7) % 255. Within a page that is
// 1 + ((j0 + i) * 131) % 255 for the j0 with j0 * 131 = page * (4096 * 131 + 7) (mod 255), so
// every page is a memcpy out of one table (131 is invertible mod 255). Fast even at -O0.
void fillPattern(void* address, uint64_t size) {
  static std::byte table[kPage + 255];
  for (uint64_t j = 0; j < sizeof table; ++j)
    table[j] = static_cast<std::byte>(1 + (j * 131) % 255);
  uint64_t inverse = 1;
  while ((inverse * 131) % 255 != 1)
    ++inverse;
  auto* bytes = static_cast<std::byte*>(address);
  for (uint64_t page = 0; page * kPage < size; ++page) {
    const uint64_t base = (page * (kPage * 131 + 7)) % 255;
    const uint64_t j0 = (base * inverse) % 255;
    std::memcpy(bytes + page * kPage, table + j0, std::min<uint64_t>(kPage, size - page * kPage));
  }
}

void* sleepingThread(void*) {
  for (;;) {
    timespec t{0, 50 * 1000 * 1000};
    nanosleep(&t, nullptr);
  }
  return nullptr;
}

void* spinningThread(void*) {
  volatile uint64_t counter = 0;
  for (;;)
    counter = counter + 1;
  return nullptr;
}

void* shortThread(void*) {
  return nullptr;
}

void* spawnerThread(void*) {
  for (;;) {
    pthread_t threads[4];
    int started = 0;
    for (auto& thread : threads)
      if (pthread_create(&thread, nullptr, shortThread, nullptr) == 0)
        ++started;
    for (int i = 0; i < started; ++i)
      pthread_join(threads[i], nullptr);
  }
  return nullptr;
}

void startThread(void* (*function)(void*)) {
  pthread_t thread;
  if (pthread_create(&thread, nullptr, function, nullptr) != 0)
    _exit(121);
}

[[noreturn]] void runChild(const ForkedTargetOptions& options, int report_fd) {
  ForkedTargetLayout layout;
  layout.pattern_size = options.pattern_bytes;
  layout.pattern = reinterpret_cast<uint64_t>(mapOrDie(layout.pattern_size));
  fillPattern(reinterpret_cast<void*>(layout.pattern), layout.pattern_size);

  auto* mixed = static_cast<std::byte*>(mapOrDie(kMixedPages * kPage));
  layout.mixed = reinterpret_cast<uint64_t>(mixed);
  fillPattern(mixed, 4 * kPage);
  std::memset(mixed + 4 * kPage, 0, 4 * kPage);
  fillPattern(mixed + 12 * kPage, 4 * kPage);

  layout.untouched = reinterpret_cast<uint64_t>(mapOrDie(kUntouchedSize));
  auto* zero_read = static_cast<volatile const char*>(mapOrDie(kZeroReadSize));
  layout.zero_read = reinterpret_cast<uint64_t>(zero_read);
  for (uint64_t offset = 0; offset < kZeroReadSize; offset += kPage)
    (void)zero_read[offset];

  void* prot_none = mapOrDie(kProtNonePages * kPage);
  fillPattern(prot_none, kProtNonePages * kPage);
  if (mprotect(prot_none, kProtNonePages * kPage, PROT_NONE) != 0)
    _exit(122);
  layout.prot_none = reinterpret_cast<uint64_t>(prot_none);

  for (int i = 0; i < options.sleeping_threads; ++i)
    startThread(sleepingThread);
  for (int i = 0; i < options.spinning_threads; ++i)
    startThread(spinningThread);
  if (options.spawn_threads)
    startThread(spawnerThread);

  if (write(report_fd, &layout, sizeof layout) != static_cast<ssize_t>(sizeof layout))
    _exit(123);
  close(report_fd);
  for (;;)
    pause();
}

} // namespace

std::unique_ptr<ForkedTarget> ForkedTarget::start(const ForkedTargetOptions& options) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return nullptr;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test binary
    if (getppid() != parent)
      _exit(124);
    runChild(options, fds[1]);
  }
  close(fds[1]);
  std::unique_ptr<ForkedTarget> target(new ForkedTarget());
  target->pid_ = pid;
  pollfd poll_fd{fds[0], POLLIN, 0};
  const int ready = poll(&poll_fd, 1, kStartTimeoutMs);
  ssize_t got = -1;
  if (ready == 1)
    got = read(fds[0], &target->layout_, sizeof target->layout_);
  close(fds[0]);
  if (got != static_cast<ssize_t>(sizeof target->layout_)) {
    ADD_FAILURE() << "forked target did not report its layout";
    return nullptr;
  }
  return target;
}

void ForkedTarget::kill() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

ForkedTarget::~ForkedTarget() {
  kill();
}

// /proc files of threads that may end at any moment are read with readProcFile: an ifstream
// throws from underflow() when read() fails with ESRCH.
std::string statusField(pid_t pid, const std::string& key) {
  const Result<std::string> text = readProcFile(procPath(pid, "status"));
  if (!text.ok())
    return "";
  std::istringstream status(*text);
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string value = line.substr(key.size() + 1);
      const size_t first = value.find_first_not_of(" \t");
      return first == std::string::npos ? "" : value.substr(first);
    }
  }
  return "";
}

char threadStateLetter(pid_t pid, pid_t tid) {
  const Result<std::string> read =
      readProcFile(procPath(pid, "task/" + std::to_string(tid) + "/stat"));
  const std::string text = read.ok() ? *read : std::string();
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size())
    return '?';
  return text[paren + 2];
}

uint64_t pagemapEntry(pid_t pid, uint64_t address) {
  const int fd = open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY);
  if (fd < 0)
    return 0;
  uint64_t entry = 0;
  if (pread(fd, &entry, sizeof entry, static_cast<off_t>(address / kPage * 8)) != sizeof entry)
    entry = 0;
  close(fd);
  return entry;
}

bool waitUntil(const std::function<bool()>& predicate, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (predicate())
      return true;
    if (std::chrono::steady_clock::now() > deadline)
      return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

} // namespace procsnap::test
