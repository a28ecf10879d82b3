// `-` as SOURCE: an archive (or core) on standard input, e.g.
//   procsnap-capture -o - PID | procsnap-analyze info -
// Sources are read at random offsets, so a pipe is first spooled to a temporary file.
#pragma once

#include <llvm/Support/Error.h>

#include <string>

namespace procsnap::analyze {

// The name SOURCE arguments use for standard input.
inline constexpr const char* kStandardInputName = "-";

// A path that reads what standard input holds: /proc/self/fd/0 when it is a regular file,
// else a temporary file (0600, in $TMPDIR or /tmp) the whole input was copied to, removed at
// exit or on a fatal signal. Spools at most once per run: later calls return the same path.
llvm::Expected<std::string> standardInputPath();

} // namespace procsnap::analyze
