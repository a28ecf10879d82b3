#include "common/proc/files.h"
#include "common/proc/smaps.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap {
namespace {

// A kernel 6.18 smaps entry with every field this kernel prints, plus ProtectionKey.
constexpr std::string_view kLibcTextSmaps =
    "7fd32c7dd000-7fd32c933000 r-xp 00026000 fe:00 332835                     "
    "/usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "Size:               1368 kB\n"
    "KernelPageSize:        4 kB\n"
    "MMUPageSize:           4 kB\n"
    "Rss:                 992 kB\n"
    "Pss:                 110 kB\n"
    "Pss_Dirty:             0 kB\n"
    "Shared_Clean:        992 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:         0 kB\n"
    "Private_Dirty:         0 kB\n"
    "Referenced:          992 kB\n"
    "Anonymous:             0 kB\n"
    "KSM:                   0 kB\n"
    "LazyFree:              0 kB\n"
    "AnonHugePages:         0 kB\n"
    "ShmemPmdMapped:        0 kB\n"
    "FilePmdMapped:         0 kB\n"
    "Shared_Hugetlb:        0 kB\n"
    "Private_Hugetlb:       0 kB\n"
    "Swap:                 12 kB\n"
    "SwapPss:               3 kB\n"
    "Locked:                0 kB\n"
    "THPeligible:           1\n"
    "ProtectionKey:         2\n"
    "VmFlags: rd ex mr mw me sd \n"
    "7fd32c98c000-7fd32c999000 rw-p 00000000 00:00 0 \n"
    "Size:                 52 kB\n"
    "Rss:                  20 kB\n"
    "THPeligible:           0\n"
    "VmFlags: rd wr mr mw me ac dd \n";

TEST(Smaps, ParsesEveryFieldUnitlessFieldsAndVmFlags) {
  auto entries = parseSmaps(kLibcTextSmaps);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);

  const SmapsEntry& text = (*entries)[0];
  EXPECT_EQ(text.map.start, 0x7fd32c7dd000u);
  EXPECT_EQ(text.map.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(text.fields.size(), 24u);
  EXPECT_EQ(text.fields.front().first, "Size");
  EXPECT_EQ(text.fields.back().first, "ProtectionKey");
  EXPECT_EQ(text.field("Size"), 1368u);
  EXPECT_EQ(text.field("Rss"), 992u);
  EXPECT_EQ(text.field("Pss"), 110u);
  EXPECT_EQ(text.field("Pss_Dirty"), 0u);
  EXPECT_EQ(text.field("Swap"), 12u);
  EXPECT_EQ(text.field("SwapPss"), 3u);
  EXPECT_EQ(text.field("THPeligible"), 1u);
  EXPECT_EQ(text.field("ProtectionKey"), 2u);
  EXPECT_EQ(text.field("NoSuchField"), std::nullopt);
  EXPECT_EQ(text.vm_flags, (std::vector<std::string>{"rd", "ex", "mr", "mw", "me", "sd"}));
  EXPECT_TRUE(text.hasVmFlag("ex"));
  EXPECT_FALSE(text.dontDump());

  const SmapsEntry& bss = (*entries)[1];
  EXPECT_EQ(bss.map.path, "");
  EXPECT_EQ(bss.field("Size"), 52u);
  EXPECT_EQ(bss.field("THPeligible"), 0u);
  EXPECT_TRUE(bss.dontDump());
}

TEST(Smaps, EmptyVmFlagsAndZeroLengthEntries) {
  auto entries = parseSmaps("1000-2000 r--p 00000000 00:00 0\n"
                            "Size:                  4 kB\n"
                            "VmFlags:\n"
                            "2000-2000 r--p 00000000 00:00 0\n"
                            "Size:                  0 kB\n"
                            "VmFlags: rd \n"
                            "3000-4000 r--p 00000000 00:00 0\n"
                            "Size:                  4 kB\n");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_TRUE((*entries)[0].vm_flags.empty());
  EXPECT_EQ((*entries)[1].map.start, 0x3000u);
  EXPECT_EQ((*entries)[1].fields.size(), 1u);
}

TEST(Smaps, AddressesGoingBackwardsAreATornRead) {
  auto result = parseSmaps("3000-4000 r--p 00000000 00:00 0\n"
                           "Size:                  4 kB\n"
                           "1000-2000 r--p 00000000 00:00 0\n"
                           "Size:                  4 kB\n");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::TornRead);
  EXPECT_NE(result.error().message.find("line 3"), std::string::npos) << result.error().message;
}

TEST(Smaps, MalformedInputIsAnErrorWithTheLineNumber) {
  const std::string head = "1000-2000 r--p 00000000 00:00 0\nSize:                  4 kB\n";
  for (const std::string& bad : {
           std::string("Rss:                 kB"),
           std::string("Rss:                 12 MB"),
           std::string("Rss:                 12kB extra"),
           std::string("not a field or a mapping"),
           std::string("1000-2000 r--p"),
       }) {
    auto result = parseSmaps(head + bad + "\n");
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().code, ErrorCode::Malformed) << bad;
    EXPECT_TRUE(result.error().message.starts_with("smaps line 3: ")) << result.error().message;
  }
  auto orphan = parseSmaps("Size:                  4 kB\n");
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, ErrorCode::Malformed);
}

void expectSmapsMatchesMaps(const std::vector<SmapsEntry>& smaps,
                            const std::vector<MapsEntry>& maps) {
  ASSERT_EQ(smaps.size(), maps.size());
  for (size_t i = 0; i < maps.size(); ++i) {
    const SmapsEntry& entry = smaps[i];
    EXPECT_EQ(entry.map, maps[i]);
    ASSERT_TRUE(entry.field("Size").has_value()) << formatMapsLine(entry.map);
    EXPECT_EQ(*entry.field("Size") * 1024, entry.map.size()) << formatMapsLine(entry.map);
    EXPECT_TRUE(entry.field("Rss").has_value());
    EXPECT_TRUE(entry.field("THPeligible").has_value());
    EXPECT_EQ(entry.hasVmFlag("rd"), entry.map.perms.read) << formatMapsLine(entry.map);
    EXPECT_EQ(entry.hasVmFlag("wr"), entry.map.perms.write) << formatMapsLine(entry.map);
  }
}

// Reads a file into a buffer sized beforehand, so that no allocation (which may map memory)
// happens between reading maps and reading smaps of this very process.
std::string_view readIntoBuffer(const char* path, std::string& buffer) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  size_t used = 0;
  ssize_t got = 0;
  while (used < buffer.size() && (got = read(fd, buffer.data() + used, buffer.size() - used)) > 0)
    used += static_cast<size_t>(got);
  close(fd);
  return std::string_view(buffer).substr(0, used);
}

TEST(Smaps, LiveSelfSmapsMatchesMapsOneForOne) {
  constexpr size_t kBufferSize = 4 << 20; // far more than this process's smaps
  std::string maps_buffer(kBufferSize, '\0');
  std::string smaps_buffer(kBufferSize, '\0');
  std::string_view maps_text = readIntoBuffer("/proc/self/maps", maps_buffer);
  std::string_view smaps_text = readIntoBuffer("/proc/self/smaps", smaps_buffer);
  ASSERT_LT(smaps_text.size(), kBufferSize);
  auto maps = parseMaps(maps_text);
  auto smaps = parseSmaps(smaps_text);
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  expectSmapsMatchesMaps(*smaps, *maps);
}

// The same through readMapsStable/readSmapsStable, on a forked copy of this process that
// sits still while it is read.
TEST(Smaps, LiveChildSmapsMatchesMapsOneForOne) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(30); // bounded even if the parent dies before killing it
    for (;;)
      pause();
  }
  auto maps = readMapsStable(child);
  auto smaps = readSmapsStable(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  expectSmapsMatchesMaps(*smaps, *maps);
}

TEST(Smaps, MadvDontDumpShowsAsDontDump) {
  constexpr size_t kPages = 4;
  const size_t size = kPages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // PROT_READ keeps the two mappings from merging with each other or with rw neighbours.
  void* excluded = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* plain = mmap(nullptr, size, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(excluded, MAP_FAILED);
  ASSERT_NE(plain, MAP_FAILED);
  ASSERT_EQ(madvise(excluded, size, MADV_DONTDUMP), 0);

  auto smaps = readSmapsStable(getpid());
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  auto find = [&](void* address) -> const SmapsEntry* {
    auto value = reinterpret_cast<uint64_t>(address);
    for (const SmapsEntry& entry : *smaps)
      if (value >= entry.map.start && value < entry.map.end)
        return &entry;
    return nullptr;
  };
  const SmapsEntry* excluded_entry = find(excluded);
  const SmapsEntry* plain_entry = find(plain);
  ASSERT_NE(excluded_entry, nullptr);
  ASSERT_NE(plain_entry, nullptr);
  EXPECT_TRUE(excluded_entry->dontDump());
  EXPECT_FALSE(plain_entry->dontDump());
  EXPECT_EQ(excluded_entry->map.start, reinterpret_cast<uint64_t>(excluded));
  EXPECT_EQ(excluded_entry->map.size(), size);
  munmap(excluded, size);
  munmap(plain, size);
}

} // namespace
} // namespace procsnap
