// procsnap-analyze's exit statuses (the README's table lists both tools'). Scripts depend on
// them: never renumber.
#pragma once

namespace procsnap::analyze {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFindings = 1; // diff: differences found; verify: damage found
inline constexpr int kExitError = 2;

} // namespace procsnap::analyze
