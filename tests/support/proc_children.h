// The children of a process as /proc shows them (zombies included): for tests that check a
// capture left nothing behind in its target (capture --cow forks it).
#pragma once

#include <sys/types.h>
#include <vector>

namespace procsnap::test {

struct ChildProcess {
  pid_t pid = 0;
  char state = '?'; // the state letter of /proc/PID/stat: 'Z' for a zombie
};

// Every process whose parent is pid, from field 4 of /proc/*/stat.
std::vector<ChildProcess> childrenOf(pid_t pid);

} // namespace procsnap::test
