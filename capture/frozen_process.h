// Freezing a live process with ptrace so that its memory and registers can be read in one
// consistent state. PTRACE_SEIZE (not SIGSTOP) because a seized tracee resumes by itself when
// the tracer dies, even by SIGKILL: the target is never left stopped.
#pragma once

#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace procsnap {

struct FreezeOptions {
  // Bound on the whole freeze (seizing, waiting for every stop, rescanning tasks). A thread
  // that does not stop within it (e.g. stuck in uninterruptible sleep) fails the freeze.
  std::chrono::milliseconds timeout{5000};
};

// Every thread of one process, stopped under ptrace until thaw() or destruction.
class FrozenProcess final {
public:
  // PTRACE_SEIZE + PTRACE_INTERRUPT on every thread of pid, rescanning /proc/PID/task until no
  // new thread appears (threads created meanwhile are caught; threads that exit meanwhile are
  // dropped). Reads each thread's name, state and register sets (NT_PRSTATUS, NT_PRFPREG,
  // NT_X86_XSTATE, ...), pc and sp from NT_PRSTATUS. Main thread (tid == pid) first.
  // Errors: NotFound ("no such process: PID"), PermissionDenied with the reason (not root,
  // different uid, kernel.yama.ptrace_scope, "already traced by PID N (name)"), ProcessGone.
  // On any error every thread already seized is detached again.
  static Result<std::unique_ptr<FrozenProcess>> freeze(pid_t pid,
                                                       const FreezeOptions& options = {});

  ~FrozenProcess(); // thaws if still frozen
  FrozenProcess(const FrozenProcess&) = delete;
  FrozenProcess& operator=(const FrozenProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::vector<ThreadRecord>& threads() const { return threads_; }
  std::vector<uint64_t> stackPointers() const;

  // A thread stopped by our PTRACE_INTERRUPT (not by a signal or a group stop): the one a
  // system call can be injected into (syscall_injection.h). The main thread when it qualifies.
  std::optional<pid_t> interruptStoppedThread() const;

  // PTRACE_DETACH every thread; idempotent. The pause duration is then pauseSeconds().
  Result<void> thaw();
  bool frozen() const { return frozen_; }
  // First thread stopped .. last thread detached (or until now while still frozen).
  double pauseSeconds() const;

private:
  // One seized thread and what detaching it needs.
  struct Tracee {
    pid_t tid = 0;
    int emergency_slot = -1;     // index in the emergency table, -1 when not recorded there
    int pending_signal = 0;      // a signal whose delivery our stop intercepted: re-injected
    bool stopped = false;        // waitpid reported its stop
    bool interrupt_stop = false; // ... and it was PTRACE_EVENT_STOP with SIGTRAP
  };

  FrozenProcess() = default;
  Result<void> seizeAll(std::chrono::steady_clock::time_point deadline);
  Result<void> waitForStop(Tracee& tracee, std::chrono::steady_clock::time_point deadline);
  Result<void> readThreads();
  Error permissionError(int seize_errno) const;

  pid_t pid_ = -1;
  bool frozen_ = false;
  std::vector<Tracee> tracees_;
  std::vector<ThreadRecord> threads_;
  // Every thread seen, with its state before it was stopped ("R", "S", ...). A zombie leader
  // (its thread exited, the process lives on) is listed but not seized: it cannot stop and
  // holds no user state. Other zombie threads are about to vanish and are left out.
  std::vector<std::pair<pid_t, std::string>> seen_;
  std::chrono::steady_clock::time_point first_stop_{};
  std::chrono::steady_clock::time_point thawed_at_{};
};

// Async-signal-safe: detaches every thread of every FrozenProcess currently frozen (a
// fixed-size global array of tids written before each PTRACE_SEIZE). For the capturer's
// SIGINT/SIGTERM/SIGHUP handlers and its fatal-signal handlers. Only the thread that owns the
// ptrace relationship can detach, so call it from the thread that froze the target (signal
// handlers run on an arbitrary thread: the capturer blocks these signals in worker threads).
void emergencyThawAll() noexcept;

} // namespace procsnap
