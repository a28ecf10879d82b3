// The string scanner against GNU strings itself: the same bytes go to `strings -a -n N -t d
// [-e l]` and to the scanner, and the lists of (offset, string) must be identical.
#include "analyze/engines/string_scanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace procsnap::analyze {
namespace {

using Hit = std::pair<uint64_t, std::string>;
using Bytes = std::vector<uint8_t>;

class TempFile {
public:
  TempFile() {
    std::string pattern = testing::TempDir() + "procsnap-strings-XXXXXX";
    int fd = mkstemp(pattern.data());
    EXPECT_GE(fd, 0);
    if (fd >= 0)
      close(fd);
    path_ = pattern;
  }
  ~TempFile() { unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// Runs GNU strings on bytes and parses "%7ld %s" lines.
std::vector<Hit> gnuStrings(const Bytes& bytes, size_t min_length, StringEncoding encoding) {
  TempFile file;
  {
    std::ofstream out(file.path(), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  // posix_spawn, not popen: no shell, and no fork of a large (sanitized) test process.
  std::vector<std::string> args = {"strings",  "-a",
                                   "-t",       "d",
                                   "-n",       std::to_string(min_length),
                                   "-e",       encoding == StringEncoding::Utf16Le ? "l" : "s",
                                   file.path()};
  std::vector<char*> argv;
  for (std::string& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t pid = -1;
  int spawned = posix_spawnp(&pid, "strings", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  EXPECT_EQ(spawned, 0);
  std::string output;
  char buffer[65536];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0)
    output.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = -1;
  if (spawned == 0)
    waitpid(pid, &status, 0);
  EXPECT_EQ(status, 0) << "strings failed on " << file.path();

  std::vector<Hit> hits;
  size_t position = 0;
  while (position < output.size()) {
    size_t end = output.find('\n', position);
    if (end == std::string::npos)
      end = output.size();
    std::string line = output.substr(position, end - position);
    position = end + 1;
    size_t digits = line.find_first_not_of(' ');
    size_t space = line.find(' ', digits);
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos)
      continue;
    hits.emplace_back(std::stoull(line.substr(digits, space - digits)), line.substr(space + 1));
  }
  return hits;
}

// Feeds bytes to the scanner in the given pieces (sizes), as one stream starting at base.
std::vector<Hit> scan(const Bytes& bytes, size_t min_length, StringEncoding encoding,
                      const std::vector<size_t>& pieces = {}, uint64_t base = 0) {
  std::vector<Hit> hits;
  StringScanner scanner(encoding, min_length, [&](const FoundString& found) {
    EXPECT_FALSE(found.truncated);
    EXPECT_EQ(found.length, found.text.size());
    hits.emplace_back(found.offset - base, found.text);
  });
  scanner.begin(base);
  size_t done = 0;
  for (size_t piece : pieces) {
    piece = std::min(piece, bytes.size() - done);
    scanner.feed(base + done, std::span(bytes).subspan(done, piece));
    done += piece;
  }
  scanner.feed(base + done, std::span(bytes).subspan(done));
  scanner.finish();
  return hits;
}

// Random bytes rich in the cases that matter: printable runs of every length, tabs, newlines,
// CR, DEL, high bytes, zeros, and embedded strings (UTF-16LE ones at odd and even offsets).
Bytes synthesize(std::mt19937_64& random, size_t size, bool utf16) {
  Bytes bytes;
  bytes.reserve(size + 64);
  std::uniform_int_distribution<int> pick(0, 99);
  while (bytes.size() < size) {
    int choice = pick(random);
    if (choice < 30) { // a string of 1..40 printable characters, maybe with a tab
      size_t length = 1 + random() % 40;
      for (size_t i = 0; i < length; ++i) {
        uint8_t c = (random() % 17 == 0) ? '\t' : static_cast<uint8_t>(0x20 + random() % 95);
        bytes.push_back(c);
        if (utf16)
          bytes.push_back(random() % 23 == 0 ? static_cast<uint8_t>(random() % 4) : 0);
      }
    } else if (choice < 45) {
      bytes.push_back(0);
    } else if (choice < 55) {
      static constexpr uint8_t kSpecial[] = {'\n', '\r', 0x7f, 0x80, 0xff, 0x0b, 0x0c, 0x1f, 0xa0};
      bytes.push_back(kSpecial[random() % sizeof kSpecial]);
    } else if (choice < 60 && utf16) {
      bytes.push_back(static_cast<uint8_t>(0x20 + random() % 95)); // shifts the parity
    } else {
      bytes.push_back(static_cast<uint8_t>(random()));
    }
  }
  bytes.resize(size);
  return bytes;
}

std::vector<size_t> randomPieces(std::mt19937_64& random, size_t total) {
  std::vector<size_t> pieces;
  size_t done = 0;
  while (done < total) {
    size_t piece = random() % 3 == 0 ? random() % 4 : random() % 200;
    pieces.push_back(piece);
    done += piece;
  }
  return pieces;
}

void expectSameAsGnu(const Bytes& bytes, size_t min_length, StringEncoding encoding,
                     std::mt19937_64& random, const std::string& what) {
  std::vector<Hit> expected = gnuStrings(bytes, min_length, encoding);
  EXPECT_EQ(scan(bytes, min_length, encoding), expected) << what;
  EXPECT_EQ(scan(bytes, min_length, encoding, randomPieces(random, bytes.size())), expected)
      << what << " (fed in pieces)";
  EXPECT_EQ(scan(bytes, min_length, encoding, {}, 0x7f0000001000), expected)
      << what << " (at a high base address)";
}

TEST(StringScanner, MatchesGnuStringsAsciiOnRandomBuffers) {
  std::mt19937_64 random(1);
  size_t compared_hits = 0;
  for (size_t min_length : {1, 2, 4, 7, 10, 16}) {
    for (int round = 0; round < 2; ++round) {
      Bytes bytes = synthesize(random, 1000 + random() % 20000, false);
      compared_hits += gnuStrings(bytes, min_length, StringEncoding::Ascii7).size();
      expectSameAsGnu(bytes, min_length, StringEncoding::Ascii7, random,
                      "-n " + std::to_string(min_length) + " round " + std::to_string(round));
    }
  }
  EXPECT_GT(compared_hits, 500u); // the buffers really hold strings
}

TEST(StringScanner, MatchesGnuStringsUtf16LeOnRandomBuffers) {
  std::mt19937_64 random(2);
  size_t compared_hits = 0;
  for (size_t min_length : {1, 2, 4, 10}) {
    for (int round = 0; round < 2; ++round) {
      Bytes bytes = synthesize(random, 1000 + random() % 20000, true);
      compared_hits += gnuStrings(bytes, min_length, StringEncoding::Utf16Le).size();
      expectSameAsGnu(bytes, min_length, StringEncoding::Utf16Le, random,
                      "-e l -n " + std::to_string(min_length) + " round " + std::to_string(round));
    }
  }
  EXPECT_GT(compared_hits, 250u);
}

TEST(StringScanner, MatchesGnuStringsOnEdgeCases) {
  std::mt19937_64 random(3);
  auto bytesOf = [](std::string_view text) { return Bytes(text.begin(), text.end()); };
  const std::vector<Bytes> cases = {
      {},
      bytesOf("abc"),
      bytesOf("abcd"),
      bytesOf("abcde"),
      bytesOf("\tabc\t"),
      bytesOf("line one\nline two\r\nthree\x7f"
              "four\x80"
              "five\xff"),
      bytesOf("ends with a string at the very end"),
      bytesOf(std::string_view("\0\0\0abcd\0", 8)),
      bytesOf(std::string_view("a\0b\0c\0d\0", 8)),                 // UTF-16LE, even
      bytesOf(std::string_view("xa\0b\0c\0d\0", 9)),                // UTF-16LE, odd
      bytesOf(std::string_view("a\0b\0c\0d\0e", 9)),                // trailing odd byte
      bytesOf(std::string_view("a\0b\0c\0d", 7)),                   // last character incomplete
      bytesOf(std::string_view("ab\0c\0d\0e\0f\0", 11)),            // both parities
      bytesOf(std::string_view("a\0b\0\x01\0c\0d\0e\0f\0g\0", 16)), // a control char inside
  };
  for (size_t index = 0; index < cases.size(); ++index) {
    for (size_t min_length : {1, 4}) {
      for (StringEncoding encoding : {StringEncoding::Ascii7, StringEncoding::Utf16Le})
        expectSameAsGnu(cases[index], min_length, encoding, random,
                        "case " + std::to_string(index) + " -e " + std::string(toLetter(encoding)) +
                            " -n " + std::to_string(min_length));
    }
  }
}

// Gaps between blocks count as zeros: scanning only the non-zero stretches equals scanning
// everything, for both encodings, including a UTF-16LE character whose high byte is the first
// byte of a gap.
TEST(StringScanner, GapsReadAsZeros) {
  std::mt19937_64 random(4);
  for (StringEncoding encoding : {StringEncoding::Ascii7, StringEncoding::Utf16Le}) {
    for (int round = 0; round < 8; ++round) {
      Bytes bytes = synthesize(random, 4000, encoding == StringEncoding::Utf16Le);
      // Zero some stretches, at odd and even offsets and of odd and even lengths.
      std::vector<std::pair<size_t, size_t>> gaps;
      for (size_t at = random() % 64; at < bytes.size();) {
        size_t length = std::min<size_t>(1 + random() % 100, bytes.size() - at);
        std::fill_n(bytes.begin() + static_cast<long>(at), length, 0);
        gaps.emplace_back(at, at + length);
        at += length + random() % 300;
      }
      std::vector<Hit> expected = gnuStrings(bytes, 4, encoding);
      std::vector<Hit> hits;
      StringScanner scanner(encoding, 4, [&](const FoundString& found) {
        hits.emplace_back(found.offset, found.text);
      });
      scanner.begin(0);
      size_t position = 0;
      for (auto [gap_start, gap_end] : gaps) {
        scanner.feed(position, std::span(bytes).subspan(position, gap_start - position));
        position = gap_end;
      }
      scanner.feed(position, std::span(bytes).subspan(position));
      scanner.finish();
      EXPECT_EQ(hits, expected) << "encoding " << toLetter(encoding) << " round " << round;
    }
  }
}

// The word-at-a-time path through text against the plain rule, for every byte value at every
// position of a run (checked against GNU above; this is exhaustive and needs no process).
TEST(StringScanner, EveryByteValueEndsOrContinuesARunExactly) {
  for (int value = 0; value < 256; ++value) {
    for (size_t position = 0; position < 24; ++position) {
      Bytes bytes(24, 'x');
      bytes[position] = static_cast<uint8_t>(value);
      bool graphic = (value >= 0x20 && value <= 0x7e) || value == '\t';
      std::vector<Hit> expected;
      if (graphic) {
        expected.emplace_back(0, std::string(bytes.begin(), bytes.end()));
      } else {
        if (position >= 4)
          expected.emplace_back(0, std::string(position, 'x'));
        if (24 - position - 1 >= 4)
          expected.emplace_back(position + 1, std::string(24 - position - 1, 'x'));
      }
      ASSERT_EQ(scan(bytes, 4, StringEncoding::Ascii7), expected)
          << "byte " << value << " at " << position;
    }
  }
}

TEST(StringScanner, StreamsDoNotJoin) {
  std::vector<Hit> hits;
  StringScanner scanner(StringEncoding::Ascii7, 4, [&](const FoundString& found) {
    hits.emplace_back(found.offset, found.text);
  });
  const std::string first = "abc";
  const std::string second = "def";
  scanner.begin(100);
  scanner.feed(100, std::span(reinterpret_cast<const uint8_t*>(first.data()), first.size()));
  scanner.begin(103); // a new region starting right where the last one ended
  scanner.feed(103, std::span(reinterpret_cast<const uint8_t*>(second.data()), second.size()));
  scanner.finish();
  EXPECT_TRUE(hits.empty());
}

TEST(StringScanner, LongStringsKeepLengthAndTruncateText) {
  Bytes bytes(kMaxStringTextBytes + 1000, 'A');
  bytes.push_back(0);
  std::vector<FoundString> found;
  StringScanner scanner(StringEncoding::Ascii7, 4,
                        [&](const FoundString& hit) { found.push_back(hit); });
  scanner.begin(0);
  for (size_t done = 0; done < bytes.size(); done += 4096)
    scanner.feed(done, std::span(bytes).subspan(done, std::min<size_t>(4096, bytes.size() - done)));
  scanner.finish();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].offset, 0u);
  EXPECT_EQ(found[0].length, kMaxStringTextBytes + 1000);
  EXPECT_EQ(found[0].text.size(), kMaxStringTextBytes);
  EXPECT_TRUE(found[0].truncated);
}

TEST(StringScanner, EncodingLetters) {
  EXPECT_EQ(stringEncodingFromLetter("s"), StringEncoding::Ascii7);
  EXPECT_EQ(stringEncodingFromLetter("l"), StringEncoding::Utf16Le);
  EXPECT_EQ(stringEncodingFromLetter("b"), std::nullopt);
  EXPECT_EQ(stringEncodingFromLetter(""), std::nullopt);
}

} // namespace
} // namespace procsnap::analyze
