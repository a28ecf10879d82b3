// Exit codes of procsnap-capture (documented in docs/CAPTURE.md). Scripts rely on them, so
// they never change meaning.
#pragma once

namespace procsnap {

enum class ExitCode : int {
  Success = 0, // the archive is complete
  Error = 1,   // nothing usable was written (no such process, permission, I/O, ...)
  Usage = 2,   // bad command line
  Partial = 3, // an archive was written but is marked partial (the target exited mid-capture)
};

inline int toInt(ExitCode code) {
  return static_cast<int>(code);
}

} // namespace procsnap
