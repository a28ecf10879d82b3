// The two ptrace primitives the freezer, the syscall injector and the --cow child share.
#pragma once

#include "common/util/result.h"

#include <chrono>
#include <sys/types.h>

namespace procsnap {

// ptrace(2) through syscall(): glibc's wrapper is variadic and treats PTRACE_PEEK* specially.
long ptraceCall(int request, pid_t tid, void* address, void* data);

// The next wait status of pid (waitpid with __WALL), polling so that a tracee that never
// reports cannot hang the capturer: the first polls come 10 µs apart, then at most every
// kMaxWaitPoll, which bounds how much a stop can be noticed late (it is pause for a frozen
// target). ProcessGone when pid is not waitable (ECHILD); an error after timeout.
Result<int> waitStatusWithin(pid_t pid, std::chrono::steady_clock::duration timeout);

inline constexpr auto kMaxWaitPoll = std::chrono::microseconds(200);

} // namespace procsnap
