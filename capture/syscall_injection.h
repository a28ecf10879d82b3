// Running one system call inside a frozen target (x86-64), as CRIU's compel does, but without
// writing to the target's memory: a thread that our PTRACE_INTERRUPT stopped is pointed at a
// `syscall` instruction already present in its executable memory, stepped through that one
// call with PTRACE_SYSCALL, given back its registers, and stopped again by an interrupt. It
// then sits in the same kind of stop as before, so when it is detached the kernel restarts a
// system call that the freeze interrupted exactly as it would have without us.
#pragma once

#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// The address of a `syscall` instruction (0f 05) in the target, preferably one followed by
// `ret` (c3): a process that resumes there with an unusable stack pointer faults at once
// instead of running on through the target's code.
struct SyscallGadget {
  uint64_t address = 0;
  bool followed_by_ret = false;
};

// Searches the [vdso] first, then the target's other executable mappings, reading them with
// process_vm_readv. Unsupported on other architectures or when no gadget exists.
Result<SyscallGadget> findSyscallGadget(pid_t pid, const std::vector<RegionRecord>& regions);

struct InjectedCall {
  int64_t result = 0; // the raw return value: >= 0, or -errno
  // Signals that arrived while the thread was stepping and were held back from it, so they
  // could not run a handler on the borrowed registers. The caller re-sends them (tgkill)
  // once the thread's own registers are back.
  std::vector<int> held_signals;
};

// Runs syscall `number` with up to six arguments on thread tid, which must be our seized
// tracee, stopped by PTRACE_INTERRUPT (a PTRACE_EVENT_STOP with SIGTRAP) and already reaped
// from waitpid. On return the thread is stopped the same way, with its own registers.
// ProcessGone when the thread died meanwhile; Unsupported off x86-64.
Result<InjectedCall> injectSyscall(pid_t tid, const SyscallGadget& gadget, long number,
                                   const std::array<uint64_t, 6>& args);

// Why a system call must not be injected into pid, or nullopt: seccomp (a filter could kill
// the process for it), or another architecture than x86-64.
std::optional<std::string> injectionObstacle(pid_t pid);

// Re-sends held_signals to thread tid of pid (tgkill), best effort: once the thread has its
// own registers back, a handler may run.
void resendHeldSignals(pid_t pid, pid_t tid, const std::vector<int>& signals);

} // namespace procsnap
