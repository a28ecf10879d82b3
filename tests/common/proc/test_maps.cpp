#include "common/proc/files.h"
#include "common/proc/maps.h"
#include "tests/common/proc/seed_maps.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>

#include <string>
#include <unistd.h>
#include <vector>

namespace procsnap {
namespace {

std::vector<std::string> splitLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    lines.emplace_back(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  }
  return lines;
}

MapsEntry parseOk(std::string_view line) {
  auto entry = parseMapsLine(line);
  EXPECT_TRUE(entry.ok()) << (entry.ok() ? "" : entry.error().message);
  return entry.ok() ? entry.value() : MapsEntry{};
}

TEST(Maps, SeedPhpFpmListingParsesEveryField) {
  auto entries = parseMaps(test::kSeedPhpFpmMaps);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 16u);

  const MapsEntry& text = (*entries)[0];
  EXPECT_EQ(text.start, 0x5577acaa6000u);
  EXPECT_EQ(text.end, 0x5577ace79000u);
  EXPECT_EQ(text.perms, (Permissions{true, false, true, false}));
  EXPECT_EQ(text.offset, 0u);
  EXPECT_EQ(text.dev_major, 8u);
  EXPECT_EQ(text.dev_minor, 3u);
  EXPECT_EQ(text.inode, 3024822u);
  EXPECT_EQ(text.path, "/usr/sbin/php-fpm7.0-zts");
  EXPECT_FALSE(text.deleted);
  EXPECT_FALSE(text.isAnonymous());

  EXPECT_EQ((*entries)[1].offset, 0x3d2000u);
  EXPECT_EQ((*entries)[2].perms.str(), "rw-p");

  const MapsEntry& bss = (*entries)[3];
  EXPECT_EQ(bss.path, "");
  EXPECT_EQ(bss.inode, 0u);
  EXPECT_TRUE(bss.isAnonymous());
  EXPECT_EQ(bss.size(), 0x16000u);

  EXPECT_EQ((*entries)[4].path, "[heap]");
  EXPECT_TRUE((*entries)[4].isPseudo());
  EXPECT_TRUE((*entries)[6].perms.none());
  EXPECT_EQ((*entries)[12].path, "[stack]");
  EXPECT_EQ((*entries)[13].path, "[vvar]");
  EXPECT_EQ((*entries)[14].path, "[vdso]");

  const MapsEntry& vsyscall = (*entries)[15];
  EXPECT_EQ(vsyscall.start, 0xffffffffff600000u);
  EXPECT_EQ(vsyscall.end, 0xffffffffff601000u);
  EXPECT_EQ(vsyscall.path, "[vsyscall]");
}

TEST(Maps, SeedPhpFpmListingRoundTripsByteForByte) {
  for (const std::string& line : splitLines(test::kSeedPhpFpmMaps)) {
    auto entry = parseMapsLine(line);
    ASSERT_TRUE(entry.ok()) << entry.error().message;
    EXPECT_EQ(formatMapsLine(*entry), line);
  }
}

TEST(Maps, ThirtyTwoBitAndOddWidthAddresses) {
  MapsEntry gpm = parseOk("08048000-08056000 r-xp 00000000 03:0c 64593      /usr/sbin/gpm");
  EXPECT_EQ(gpm.start, 0x08048000u);
  EXPECT_EQ(gpm.end, 0x08056000u);
  EXPECT_EQ(gpm.dev_major, 3u);
  EXPECT_EQ(gpm.dev_minor, 0xcu);
  EXPECT_EQ(gpm.inode, 64593u);
  EXPECT_EQ(gpm.path, "/usr/sbin/gpm");

  MapsEntry stack32 = parseOk("bfffe000-c0000000 rwxp 00000000 00:00 0          [stack]");
  EXPECT_EQ(stack32.end, 0xc0000000u);
  EXPECT_TRUE(stack32.perms.execute);

  MapsEntry narrow = parseOk("1000-2000 r--p 0 0:0 0");
  EXPECT_EQ(narrow.start, 0x1000u);
  EXPECT_EQ(narrow.end, 0x2000u);
  EXPECT_EQ(narrow.path, "");
  // The kernel pads short addresses to 8 digits.
  EXPECT_EQ(formatMapsLine(narrow), "00001000-00002000 r--p 00000000 00:00 0 ");

  MapsEntry wide = parseOk("ffffffffffffe000-ffffffffffffffff r--p 00000000 00:00 0");
  EXPECT_EQ(wide.end, 0xffffffffffffffffu);

  // Major/minor wider than two digits (NVMe partitions, large minors).
  MapsEntry device = parseOk("7f0000000000-7f0000001000 r--p 00000000 103:1f3 12 /x");
  EXPECT_EQ(device.dev_major, 0x103u);
  EXPECT_EQ(device.dev_minor, 0x1f3u);
  EXPECT_EQ(formatMapsLine(device).substr(0, 51),
            "7f0000000000-7f0000001000 r--p 00000000 103:1f3 12 ");
}

TEST(Maps, PathsWithSpacesDeletedAndSpecialNames) {
  const std::string prefix = "7f0000000000-7f0000001000 rw-s 00000000 00:01 4242 ";
  MapsEntry spaced = parseOk(prefix + "                  /tmp/my lib dir/lib x.so");
  EXPECT_EQ(spaced.path, "/tmp/my lib dir/lib x.so");
  EXPECT_FALSE(spaced.deleted);
  EXPECT_TRUE(spaced.perms.shared);

  MapsEntry deleted = parseOk(prefix + "/tmp/old lib.so (deleted)");
  EXPECT_EQ(deleted.path, "/tmp/old lib.so");
  EXPECT_TRUE(deleted.deleted);

  MapsEntry memfd = parseOk(prefix + "/memfd:jit cache (deleted)");
  EXPECT_EQ(memfd.path, "/memfd:jit cache");
  EXPECT_TRUE(memfd.deleted);

  MapsEntry sysv = parseOk(prefix + "/SYSV00000000 (deleted)");
  EXPECT_EQ(sysv.path, "/SYSV00000000");
  EXPECT_TRUE(sysv.deleted);

  // A trailing space belongs to the file name.
  EXPECT_EQ(parseOk(prefix + "/tmp/trailing ").path, "/tmp/trailing ");

  for (const char* name : {"[heap]", "[stack]", "[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]",
                           "[anon:my arena]", "[anon_shmem:ring]"}) {
    MapsEntry entry =
        parseOk("7f0000000000-7f0000001000 r--p 00000000 00:00 0 " + std::string(name));
    EXPECT_EQ(entry.path, name);
    EXPECT_TRUE(entry.isPseudo()) << name;
    EXPECT_TRUE(entry.isAnonymous()) << name;
    EXPECT_FALSE(entry.deleted);
  }
}

TEST(Maps, FormatPutsPathAtColumn73AndRoundTripsSyntheticEntries) {
  MapsEntry entry;
  entry.start = 0x7f0000000000;
  entry.end = 0x7f0000021000;
  entry.perms = {true, true, false, false};
  entry.offset = 0x1d3000;
  entry.dev_major = 0xfe;
  entry.dev_minor = 0;
  entry.inode = 332835;
  entry.path = "/usr/lib/x86_64-linux-gnu/lib c.so";
  entry.deleted = true;
  std::string line = formatMapsLine(entry);
  EXPECT_EQ(line.find('/'), 73u);
  EXPECT_TRUE(line.ends_with("/lib c.so (deleted)"));
  auto back = parseMapsLine(line);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, entry);

  entry.path.clear();
  entry.deleted = false;
  EXPECT_TRUE(formatMapsLine(entry).ends_with(" 332835 "));
}

TEST(Maps, ZeroLengthEntriesAreSkipped) {
  auto entries = parseMaps("1000-2000 r--p 00000000 00:00 0\n"
                           "2000-2000 ---p 00000000 00:00 0\n"
                           "3000-4000 rw-p 00000000 00:00 0\n");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].start, 0x3000u);
}

TEST(Maps, AddressesGoingBackwardsAreATornRead) {
  auto backwards = parseMaps("1000-2000 r--p 00000000 00:00 0\n"
                             "3000-4000 r--p 00000000 00:00 0\n"
                             "2000-3000 r--p 00000000 00:00 0\n");
  ASSERT_FALSE(backwards.ok());
  EXPECT_EQ(backwards.error().code, ErrorCode::TornRead);
  EXPECT_NE(backwards.error().message.find("line 3"), std::string::npos)
      << backwards.error().message;
  EXPECT_NE(backwards.error().message.find("0x2000"), std::string::npos);

  auto overlapping = parseMaps("1000-3000 r--p 00000000 00:00 0\n"
                               "2000-4000 r--p 00000000 00:00 0\n");
  ASSERT_FALSE(overlapping.ok());
  EXPECT_EQ(overlapping.error().code, ErrorCode::TornRead);

  // Touching entries are fine.
  EXPECT_TRUE(parseMaps("1000-2000 r--p 00000000 00:00 0\n2000-3000 rw-p 00000000 00:00 0\n").ok());
}

TEST(Maps, MalformedLinesAreErrorsWithTheLineNumber) {
  const std::string good = "1000-2000 r--p 00000000 00:00 0\n";
  const std::vector<std::string> bad_lines = {
      "",                                                   // empty line inside the file
      "garbage",                                            // no address
      "1000 r--p 00000000 00:00 0",                         // no '-'
      "1000-zz r--p 00000000 00:00 0",                      // bad end
      "2000-1000 r--p 00000000 00:00 0",                    // end below start
      "1000-2000 rwzp 00000000 00:00 0",                    // bad permission letter
      "1000-2000 r--q 00000000 00:00 0",                    // bad share letter
      "1000-2000 r-- 00000000 00:00 0",                     // short permissions
      "1000-2000 r--p 0000000g 00:00 0",                    // bad offset
      "1000-2000 r--p 00000000 0000 0",                     // no ':' in device
      "1000-2000 r--p 00000000 00:00",                      // no inode
      "1000-2000 r--p 00000000 00:00 x",                    // bad inode
      "1000-2000 r--p 00000000 00:00 0x12 /a",              // inode is decimal
      "10000000000000000-10000000000001000 r--p 0 00:00 0", // 17 digits: overflow
      "1000-2000  r--p 00000000 00:00 0",                   // double space
      "-1000-2000 r--p 00000000 00:00 0",                   // sign
  };
  for (const std::string& bad : bad_lines) {
    auto single = parseMapsLine(bad);
    EXPECT_FALSE(single.ok()) << bad;
    if (!single.ok()) {
      EXPECT_EQ(single.error().code, ErrorCode::Malformed);
      EXPECT_EQ(single.error().message.find('\n'), std::string::npos);
    }
    auto file = parseMaps(good + "3000-4000 r--p 00000000 00:00 0\n" + bad + "\n" +
                          "9000-a000 r--p 00000000 00:00 0\n");
    ASSERT_FALSE(file.ok()) << bad;
    EXPECT_EQ(file.error().code, ErrorCode::Malformed) << bad;
    EXPECT_TRUE(file.error().message.starts_with("line 3: ")) << file.error().message;
  }
}

TEST(Maps, ErrorMessagesQuoteControlCharactersSafely) {
  auto result = parseMapsLine("1000-2000 r\x01-p 0 00:00 0");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("\\x01"), std::string::npos) << result.error().message;
}

TEST(Maps, EmptyTextIsNoEntries) {
  auto entries = parseMaps("");
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST(Maps, LiveSelfMapsParsesAndRoundTripsByteForByte) {
  auto text = readProcFile("/proc/self/maps");
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto entries = parseMaps(*text);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  std::vector<std::string> lines = splitLines(*text);
  ASSERT_EQ(entries->size(), lines.size());
  bool saw_heap_or_stack = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(formatMapsLine((*entries)[i]), lines[i]);
    saw_heap_or_stack |= (*entries)[i].path == "[stack]";
  }
  EXPECT_TRUE(saw_heap_or_stack);

  auto stable = readMapsStable(getpid());
  ASSERT_TRUE(stable.ok()) << stable.error().message;
  EXPECT_GT(stable->size(), 5u);
}

// A non-PIE target has 8-digit addresses, still padded to the 64-bit path column.
TEST(Maps, LiveNonPieSampleRoundTripsByteForByte) {
  auto sample = test::SampleProcess::start(test::SampleVariant::NoPie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto text = readProcFile(procPath((*sample)->pid(), "maps"));
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto entries = parseMaps(*text);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  std::vector<std::string> lines = splitLines(*text);
  ASSERT_EQ(entries->size(), lines.size());
  ASSERT_TRUE(lines[0].starts_with("00400000-")) << lines[0];
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(formatMapsLine((*entries)[i]), lines[i]);
}

} // namespace
} // namespace procsnap
