#include "capture/syscall_injection.h"

#include "capture/ptrace_calls.h"
#include "common/proc/files.h"
#include "common/proc/status.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>

namespace procsnap {

namespace {

// An executable mapping is searched in reads of this size; the [vdso] is one or two pages.
constexpr uint64_t kGadgetReadBytes = 64u << 10;
// Bytes of executable mappings searched in all before giving up: a libc's text holds
// hundreds of syscall instructions in its first megabytes.
constexpr uint64_t kGadgetSearchLimit = 16u << 20;
// A thread stepping through one system call (clone of a large process copies its page
// tables) reports each stop within this bound on a sane machine.
constexpr auto kStepTimeout = std::chrono::seconds(10);

Result<void> ptraceOrError(int request, pid_t tid, void* address, void* data, const char* what) {
  if (ptraceCall(request, tid, address, data) == 0)
    return success();
  const int err = errno;
  if (err == ESRCH)
    return Error::make(ErrorCode::ProcessGone, "thread " + std::to_string(tid) + " exited");
  return Error::make(ErrorCode::Generic, std::string(what) + " on thread " + std::to_string(tid) +
                                             ": " + std::strerror(err));
}

// The next ptrace stop of tid.
Result<int> waitForStop(pid_t tid) {
  auto status = waitStatusWithin(tid, kStepTimeout);
  if (status && (WIFEXITED(*status) || WIFSIGNALED(*status)))
    return Error::make(ErrorCode::ProcessGone, "thread " + std::to_string(tid) + " exited");
  return status;
}

bool isSyscallStop(int status) {
  return WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80);
}
bool isInterruptStop(int status) {
  return WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP && WSTOPSIG(status) == SIGTRAP;
}
bool isSignalDeliveryStop(int status) {
  return WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) != (SIGTRAP | 0x80);
}

// Resumes tid with `request` until a stop that `wanted` accepts. Signal-delivery stops on the
// way are held back (resumed with no signal) and recorded; other stops (group stops) resume.
template <typename Wanted>
Result<void> resumeUntil(pid_t tid, int request, Wanted wanted, std::vector<int>& held) {
  for (;;) {
    PROCSNAP_TRY(ptraceOrError(request, tid, nullptr, nullptr, "resuming"));
    auto status = waitForStop(tid);
    if (!status)
      return std::move(status).takeError();
    if (wanted(*status))
      return success();
    if (isSignalDeliveryStop(*status))
      held.push_back(WSTOPSIG(*status));
  }
}

} // namespace

std::optional<std::string> injectionObstacle(pid_t pid) {
#if !defined(__x86_64__)
  (void)pid;
  return std::string("system call injection is only built for x86-64");
#else
  auto text = readProcFile(procPath(pid, "status"), 1u << 16);
  if (!text)
    return "cannot read its status: " + text.error().message;
  auto status = parseStatus(*text);
  if (!status)
    return "cannot parse its status: " + status.error().message;
  if (auto seccomp = status->get("Seccomp"); seccomp && *seccomp != "0")
    return std::string("it runs under seccomp (mode ") + std::string(*seccomp) +
           "), which could kill it for an injected system call";
  return std::nullopt;
#endif
}

void resendHeldSignals(pid_t pid, pid_t tid, const std::vector<int>& signals) {
  for (int signal : signals)
    (void)::syscall(SYS_tgkill, pid, tid, signal); // best effort: the thread is ours and stopped
}

#if defined(__x86_64__)

Result<SyscallGadget> findSyscallGadget(pid_t pid, const std::vector<RegionRecord>& regions) {
  std::vector<const RegionRecord*> candidates;
  for (const RegionRecord& region : regions)
    if (region.map().perms.execute && region.map().perms.read && region.map().path == "[vdso]")
      candidates.push_back(&region);
  for (const RegionRecord& region : regions)
    if (region.map().perms.execute && region.map().perms.read && region.map().path != "[vdso]" &&
        region.map().path != "[vsyscall]")
      candidates.push_back(&region);

  std::vector<unsigned char> buffer(kGadgetReadBytes + 2);
  uint64_t searched = 0;
  std::optional<SyscallGadget> any;
  for (const RegionRecord* region : candidates) {
    for (uint64_t at = region->map().start; at < region->map().end && searched < kGadgetSearchLimit;
         at += kGadgetReadBytes) {
      const uint64_t length = std::min<uint64_t>(kGadgetReadBytes + 2, region->map().end - at);
      iovec local{buffer.data(), length};
      iovec remote{reinterpret_cast<void*>(at), length};
      const ssize_t got = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (got < 2)
        break;
      searched += static_cast<uint64_t>(got);
      for (ssize_t i = 0; i + 1 < got; ++i) {
        if (buffer[i] != 0x0f || buffer[i + 1] != 0x05)
          continue;
        const bool ret = i + 2 < got && buffer[i + 2] == 0xc3;
        SyscallGadget gadget{at + static_cast<uint64_t>(i), ret};
        // The vdso's syscalls return to their caller at once; elsewhere prefer `syscall; ret`.
        if (ret || region->map().path == "[vdso]")
          return gadget;
        if (!any)
          any = gadget;
      }
    }
  }
  if (any)
    return *any;
  return Error::make(ErrorCode::Unsupported,
                     "no syscall instruction found in the executable mappings of " +
                         std::to_string(pid));
}

Result<InjectedCall> injectSyscall(pid_t tid, const SyscallGadget& gadget, long number,
                                   const std::array<uint64_t, 6>& args) {
  user_regs_struct saved{};
  PROCSNAP_TRY(ptraceOrError(PTRACE_GETREGS, tid, nullptr, &saved, "PTRACE_GETREGS"));
  if (saved.cs != 0x33)
    return Error::make(ErrorCode::Unsupported,
                       "thread " + std::to_string(tid) + " runs 32-bit code: not injecting");

  user_regs_struct call = saved;
  call.rip = gadget.address;
  call.rax = static_cast<uint64_t>(number);
  // No system call to restart: the kernel must not rewind rip or rax on the way out.
  call.orig_rax = ~uint64_t{0};
  call.rdi = args[0];
  call.rsi = args[1];
  call.rdx = args[2];
  call.r10 = args[3];
  call.r8 = args[4];
  call.r9 = args[5];

  InjectedCall injected;
  // Syscall stops are then told apart from SIGTRAPs. Options go with the detach.
  PROCSNAP_TRY(ptraceOrError(PTRACE_SETOPTIONS, tid, nullptr,
                             reinterpret_cast<void*>(uintptr_t{PTRACE_O_TRACESYSGOOD}),
                             "PTRACE_SETOPTIONS"));
  PROCSNAP_TRY(ptraceOrError(PTRACE_SETREGS, tid, nullptr, &call, "PTRACE_SETREGS"));
  // From here on the thread runs borrowed registers: every path must put its own back.
  auto restore = [&]() -> Result<void> {
    PROCSNAP_TRY(ptraceOrError(PTRACE_SETREGS, tid, nullptr, &saved, "PTRACE_SETREGS"));
    (void)ptraceCall(PTRACE_SETOPTIONS, tid, nullptr, nullptr); // back to no options
    // Stop it the way the freeze did: the pending interrupt traps the thread on its way to
    // user space, where an interrupted system call is restarted once it is detached.
    PROCSNAP_TRY(ptraceOrError(PTRACE_INTERRUPT, tid, nullptr, nullptr, "PTRACE_INTERRUPT"));
    return resumeUntil(tid, PTRACE_CONT, isInterruptStop, injected.held_signals);
  };

  auto entered = resumeUntil(tid, PTRACE_SYSCALL, isSyscallStop, injected.held_signals);
  Result<void> exited = entered
                            ? resumeUntil(tid, PTRACE_SYSCALL, isSyscallStop, injected.held_signals)
                            : std::move(entered);
  if (!exited) {
    (void)restore(); // deliberately ignored: the stepping error is the one to report
    return std::move(exited).takeError();
  }
  user_regs_struct after{};
  auto read = ptraceOrError(PTRACE_GETREGS, tid, nullptr, &after, "PTRACE_GETREGS");
  auto restored = restore();
  if (!read)
    return std::move(read).takeError();
  if (!restored)
    return std::move(restored).takeError();
  injected.result = static_cast<int64_t>(after.rax);
  return injected;
}

#else

Result<SyscallGadget> findSyscallGadget(pid_t, const std::vector<RegionRecord>&) {
  return Error::make(ErrorCode::Unsupported, "system call injection is only built for x86-64");
}

Result<InjectedCall> injectSyscall(pid_t, const SyscallGadget&, long,
                                   const std::array<uint64_t, 6>&) {
  return Error::make(ErrorCode::Unsupported, "system call injection is only built for x86-64");
}

#endif

} // namespace procsnap
