#include "capture/ptrace_calls.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace procsnap {

long ptraceCall(int request, pid_t tid, void* address, void* data) {
  return ::syscall(SYS_ptrace, request, tid, address, data);
}

Result<int> waitStatusWithin(pid_t pid, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const long max_sleep_ns = std::chrono::nanoseconds(kMaxWaitPoll).count();
  for (long sleep_ns = 10'000;; sleep_ns = std::min(sleep_ns * 2, max_sleep_ns)) {
    int status = 0;
    const pid_t got = ::waitpid(pid, &status, __WALL | WNOHANG);
    if (got == pid)
      return status;
    if (got < 0 && errno != EINTR)
      return Error::make(ErrorCode::ProcessGone,
                         "waiting for " + std::to_string(pid) + ": " + std::strerror(errno));
    if (std::chrono::steady_clock::now() > deadline)
      return Error::make(
          ErrorCode::Generic,
          "process " + std::to_string(pid) + " did not report within " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
              " s");
    timespec pause{0, sleep_ns};
    ::nanosleep(&pause, nullptr); // an early wake-up only polls sooner
  }
}

} // namespace procsnap
