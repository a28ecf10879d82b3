#pragma once

#include <string_view>

namespace procsnap {

// The tool version recorded in archives and printed by --version.
std::string_view toolVersion();

} // namespace procsnap
