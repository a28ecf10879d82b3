#include "tests/support/peak_growth.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap::test {

long peakGrowth(const std::function<void()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0)
    return -1;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    fn();
    ::getrusage(RUSAGE_SELF, &after);
    const long growth = (after.ru_maxrss - before.ru_maxrss) * 1024;
    (void)!::write(fds[1], &growth, sizeof growth);
    ::_exit(0);
  }
  ::close(fds[1]);
  long growth = -1;
  if (::read(fds[0], &growth, sizeof growth) != sizeof growth)
    growth = -1;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return growth;
}

} // namespace procsnap::test
