// The one escaping rule for text that comes from an archive, a core, an ELF file or /proc on
// its way to a terminal or an error line: control characters are shown escaped, the way
// `ls -b` and `cat -v` show them, so input can neither end a "one-line" message early nor
// send escape sequences to the terminal. JSON output needs none of this: JSON escapes its own.
#pragma once

#include <string>
#include <string_view>

namespace procsnap {

// Returns text with every byte or character that could act on a terminal spelled out:
// \n and \r as such, other C0 controls but tab (which `cat -v` and GNU strings leave too), DEL, C1
// controls (U+0080..U+009F), bidirectional overrides (U+202A..U+202E, U+2066..U+2069) and bytes
// that are not valid UTF-8 as \xNN (one per byte). Printable ASCII and valid printable UTF-8 pass
// unchanged. A backslash is kept as it is, so escaping is idempotent: text escaped once (in an
// error message) and again (at the error line) reads the same.
std::string escapeForTerminal(std::string_view text);

// True when escapeForTerminal would change text (the common case, false, costs one pass).
bool needsTerminalEscape(std::string_view text);

} // namespace procsnap
