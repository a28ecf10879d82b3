// The one escaping rule for input text on its way to a terminal or an error line.
#include "common/util/terminal_text.h"

#include "common/util/result.h"

#include <gtest/gtest.h>

namespace procsnap {
namespace {

TEST(TerminalText, PrintableTextAndValidUtf8PassUnchanged) {
  for (const char* text : {"", "plain /usr/lib/libc.so.6", "tab\there", "euro \xe2\x82\xac",
                           "back\\slash", "4-byte \xf0\x9f\x98\x80"}) {
    EXPECT_FALSE(needsTerminalEscape(text)) << text;
    EXPECT_EQ(escapeForTerminal(text), text);
  }
}

TEST(TerminalText, ControlsAndBadBytesAreSpelledOut) {
  EXPECT_EQ(escapeForTerminal("kind\nprocsnap-analyze: forged"), "kind\\nprocsnap-analyze: forged");
  EXPECT_EQ(escapeForTerminal("a\rb"), "a\\rb");
  EXPECT_EQ(escapeForTerminal("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(escapeForTerminal(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(escapeForTerminal("del\x7f"), "del\\x7f");
  EXPECT_EQ(escapeForTerminal("c1 \xc2\x9b"), "c1 \\xc2\\x9b");              // U+009B, a CSI
  EXPECT_EQ(escapeForTerminal("bidi \xe2\x80\xae"), "bidi \\xe2\\x80\\xae"); // U+202E
  EXPECT_EQ(escapeForTerminal("bad \xff\xfe"), "bad \\xff\\xfe");
  EXPECT_EQ(escapeForTerminal("overlong \xc0\xaf"), "overlong \\xc0\\xaf");
  EXPECT_EQ(escapeForTerminal("cut \xe2\x82"), "cut \\xe2\\x82");
  EXPECT_EQ(escapeForTerminal("surrogate \xed\xa0\x80"), "surrogate \\xed\\xa0\\x80");
}

TEST(TerminalText, EscapingTwiceReadsTheSameAsOnce) {
  const std::string once = escapeForTerminal("x\n\x1b\xff");
  EXPECT_FALSE(needsTerminalEscape(once));
  EXPECT_EQ(escapeForTerminal(once), once);
}

TEST(TerminalText, ErrorMessagesAreOneLineWithoutControls) {
  const Error error = Error::make(ErrorCode::Malformed, "bad kind \"a\nb\x1b[2J\"");
  EXPECT_EQ(error.message, "bad kind \"a\\nb\\x1b[2J\"");
}

} // namespace
} // namespace procsnap
