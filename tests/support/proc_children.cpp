#include "tests/support/proc_children.h"

#include "common/proc/files.h"

#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <string>

namespace procsnap::test {

std::vector<ChildProcess> childrenOf(pid_t pid) {
  std::vector<ChildProcess> children;
  DIR* dir = opendir("/proc");
  if (dir == nullptr)
    return children;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long candidate = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0')
      continue;
    // readProcFile, not an ifstream: a process may end between readdir and the read.
    auto stat = readProcFile("/proc/" + std::string(entry->d_name) + "/stat", 4096);
    if (!stat)
      continue;
    const size_t paren = stat->rfind(')');
    char state = 0;
    int ppid = 0;
    if (paren != std::string::npos && paren + 2 < stat->size() &&
        std::sscanf(stat->c_str() + paren + 2, "%c %d", &state, &ppid) == 2 && ppid == pid)
      children.push_back({static_cast<pid_t>(candidate), state});
  }
  closedir(dir);
  return children;
}

} // namespace procsnap::test
