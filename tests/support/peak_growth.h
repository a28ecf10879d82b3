// How much memory some code makes a process allocate at its peak, measured in a forked child so
// that the test process's own peak does not hide it.
#pragma once

#include <functional>

namespace procsnap::test {

// Runs fn in a forked child and returns how much the child's peak RSS grew (bytes), or -1.
long peakGrowth(const std::function<void()>& fn);

} // namespace procsnap::test
