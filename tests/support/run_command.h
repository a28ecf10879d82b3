// Runs a program (no shell) and captures its output, with a hard timeout, so tests can compare
// against real tools: nm, readelf, gdb, strings.
#pragma once

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace procsnap::test {

struct CommandResult {
  // The exit status; 128 + N when killed by signal N; -1 when it could not run or timed out.
  int exit_code = -1;
  std::string out, err;
  bool timed_out = false;
  bool truncated = false; // output beyond kMaxCommandOutputBytes was dropped
};

// Each of stdout and stderr keeps at most this much, so a runaway command cannot exhaust
// memory.
inline constexpr size_t kMaxCommandOutputBytes = size_t{256} << 20;

// Runs argv[0] (looked up in PATH) with stdin from /dev/null. After timeout_seconds the
// command and its process group get SIGKILL and the result says timed_out.
CommandResult runCommand(const std::vector<std::string>& argv, int timeout_seconds);

// Starts argv[0] (a path) without waiting, with standard input, output and error on
// /dev/null, so a test can signal it while it works. Returns its pid, or -1.
pid_t spawnCommand(const std::vector<std::string>& argv);

// Waits for a spawned child, at most timeout; its wait status, or -1 after SIGKILL (timeout)
// or when it is not our child.
int waitCommand(pid_t pid, std::chrono::milliseconds timeout);

} // namespace procsnap::test
