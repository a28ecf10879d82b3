#include "common/util/result.h"
#include "common/util/terminal_text.h"

#include <gtest/gtest.h>

#include <string>

namespace procsnap {
namespace {

TEST(TerminalText, ControlCharactersAreEscapedLikeLsB) {
  EXPECT_EQ(escapeForTerminal("plain /usr/lib/libc.so.6"), "plain /usr/lib/libc.so.6");
  EXPECT_EQ(escapeForTerminal("a\nprocsnap-analyze: error: forged"),
            "a\\nprocsnap-analyze: error: forged");
  EXPECT_EQ(escapeForTerminal("\x1b[31mred\r"), "\\x1b[31mred\\r");
  EXPECT_EQ(escapeForTerminal("tab\tkept"), "tab\tkept");
  EXPECT_EQ(escapeForTerminal(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
  EXPECT_EQ(escapeForTerminal("caf\xc3\xa9"), "caf\xc3\xa9"); // valid UTF-8 kept
  EXPECT_EQ(escapeForTerminal("c1 \xc2\x9b"
                              "31m"),
            "c1 \\xc2\\x9b31m");                                  // CSI as C1
  EXPECT_EQ(escapeForTerminal("bad \xff\xc3"), "bad \\xff\\xc3"); // not UTF-8
  EXPECT_EQ(escapeForTerminal("bidi \xe2\x80\xae"), "bidi \\xe2\\x80\\xae");
}

TEST(TerminalText, EscapingIsIdempotent) {
  const std::string once = escapeForTerminal("x\n\x1b\xff\\n");
  EXPECT_EQ(escapeForTerminal(once), once);
  EXPECT_FALSE(needsTerminalEscape(once));
}

TEST(TerminalText, ErrorMessagesAreEscapedWhereTheyAreMade) {
  Error error = Error::make(ErrorCode::Malformed, "kind \"a\nb\"");
  EXPECT_EQ(error.message, "kind \"a\\nb\"");
}

} // namespace
} // namespace procsnap
