#include "common/proc/files.h"
#include "common/proc/status.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

namespace procsnap {
namespace {

constexpr std::string_view kStatus = "Name:\tmy prog\n"
                                     "Umask:\t0022\n"
                                     "State:\tt (tracing stop)\n"
                                     "Tgid:\t4961\n"
                                     "Ngid:\t0\n"
                                     "Pid:\t4962\n"
                                     "PPid:\t4955\n"
                                     "TracerPid:\t5000\n"
                                     "Uid:\t1000\t1001\t1002\t1003\n"
                                     "Gid:\t2000\t2001\t2002\t2003\n"
                                     "FDSize:\t256\n"
                                     "Groups:\t \n"
                                     "VmRSS:\t    1748 kB\n"
                                     "Threads:\t3\n"
                                     "Cpus_allowed_list:\t0-1\n";

TEST(ProcStatus, ParsesEveryField) {
  auto status = parseStatus(kStatus);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->fields.size(), 15u);
  EXPECT_EQ(status->name, "my prog");
  EXPECT_EQ(status->state, 't');
  EXPECT_EQ(status->tgid, 4961);
  EXPECT_EQ(status->pid, 4962);
  EXPECT_EQ(status->ppid, 4955);
  EXPECT_EQ(status->tracer_pid, 5000);
  EXPECT_EQ(status->uid, (std::array<uint32_t, 4>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(status->gid, (std::array<uint32_t, 4>{2000, 2001, 2002, 2003}));
  EXPECT_EQ(status->threads, 3u);
  EXPECT_EQ(status->get("Groups"), "");
  EXPECT_EQ(status->get("VmRSS"), "1748 kB");
  EXPECT_EQ(status->get("State"), "t (tracing stop)");
  EXPECT_EQ(status->get("Missing"), std::nullopt);
}

TEST(ProcStatus, MalformedStatusIsAnError) {
  for (std::string_view bad : {
           std::string_view("Pid:\t12\nno colon here\n"),
           std::string_view("Pid:\tx12\n"),
           std::string_view("Pid:\t12\nUid:\t1\t2\t3\n"),
           std::string_view("Pid:\t12\nUid:\t1\t2\t3\t4\t5\n"),
           std::string_view("Pid:\t12\nGid:\t1\t2\tz\t4\n"),
           std::string_view("Pid:\t12\nTracerPid:\t99999999999\n"),
           std::string_view("Pid:\t12\nState:\t\n"),
           std::string_view("Name:\tno pid\n"),
       }) {
    auto status = parseStatus(bad);
    ASSERT_FALSE(status.ok()) << bad;
    EXPECT_EQ(status.error().code, ErrorCode::Malformed) << bad;
  }
}

TEST(ProcStatus, LiveSelfStatusMatchesSystemCalls) {
  auto text = readProcFile("/proc/self/status");
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto status = parseStatus(*text);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->pid, getpid());
  EXPECT_EQ(status->tgid, getpid());
  EXPECT_EQ(status->ppid, getppid());
  EXPECT_EQ(status->state, 'R');
  EXPECT_EQ(status->uid[0], getuid());
  EXPECT_EQ(status->uid[1], geteuid());
  EXPECT_EQ(status->gid[0], getgid());
  EXPECT_EQ(status->gid[1], getegid());
  EXPECT_GE(status->threads, 1u);
  auto comm = readProcFile("/proc/self/comm");
  ASSERT_TRUE(comm.ok());
  EXPECT_EQ(status->name + "\n", *comm);
  EXPECT_GT(status->fields.size(), 30u);
}

std::vector<std::byte> auxvBytes64(std::initializer_list<uint64_t> words) {
  std::vector<std::byte> bytes(words.size() * 8);
  size_t offset = 0;
  for (uint64_t word : words) {
    std::memcpy(bytes.data() + offset, &word, 8);
    offset += 8;
  }
  return bytes;
}

std::vector<std::byte> auxvBytes32(std::initializer_list<uint32_t> words) {
  std::vector<std::byte> bytes(words.size() * 4);
  size_t offset = 0;
  for (uint32_t word : words) {
    std::memcpy(bytes.data() + offset, &word, 4);
    offset += 4;
  }
  return bytes;
}

TEST(Auxv, EightAndFourByteWordsStopAtNull) {
  auto wide = parseAuxv(auxvBytes64({6, 4096, 9, 0x401000, 0, 0, 77, 77}), 8);
  ASSERT_TRUE(wide.ok()) << wide.error().message;
  ASSERT_EQ(wide->size(), 2u);
  EXPECT_EQ((*wide)[0].type, 6u);
  EXPECT_EQ((*wide)[0].value, 4096u);
  EXPECT_EQ((*wide)[1].value, 0x401000u);

  auto narrow = parseAuxv(auxvBytes32({3, 0x8048034, 5, 9, 0, 0}), 4);
  ASSERT_TRUE(narrow.ok()) << narrow.error().message;
  ASSERT_EQ(narrow->size(), 2u);
  EXPECT_EQ((*narrow)[0].type, 3u);
  EXPECT_EQ((*narrow)[0].value, 0x8048034u);
  EXPECT_EQ((*narrow)[1].value, 9u);

  auto empty = parseAuxv(auxvBytes64({0, 0}), 8);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Auxv, TruncatedOrBadWordSizeIsAnError) {
  auto no_null = parseAuxv(auxvBytes64({6, 4096, 9, 0x401000}), 8);
  ASSERT_FALSE(no_null.ok());
  EXPECT_EQ(no_null.error().code, ErrorCode::Truncated);

  std::vector<std::byte> half = auxvBytes64({6, 4096, 0, 0});
  half.resize(half.size() - 3);
  auto cut = parseAuxv(half, 8);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code, ErrorCode::Truncated);

  auto none = parseAuxv({}, 8);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::Truncated);

  auto odd = parseAuxv(auxvBytes64({0, 0}), 3);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, ErrorCode::InvalidArgument);
}

TEST(Auxv, LiveSelfAuxvMatchesGetauxval) {
  auto bytes = readProcFileBytes("/proc/self/auxv");
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto entries = parseAuxv(*bytes, 8);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_GT(entries->size(), 10u);
  bool saw_pagesz = false;
  for (const AuxvEntry& entry : *entries) {
    // glibc's getauxval answers AT_HWCAP/AT_HWCAP2 from its own rewritten copies.
    if (entry.type == AT_HWCAP || entry.type == AT_HWCAP2)
      continue;
    EXPECT_EQ(entry.value, getauxval(entry.type)) << auxvTypeName(entry.type);
    saw_pagesz |= entry.type == AT_PAGESZ;
  }
  EXPECT_TRUE(saw_pagesz);
}

TEST(Auxv, TypeNames) {
  EXPECT_EQ(auxvTypeName(AT_NULL), "AT_NULL");
  EXPECT_EQ(auxvTypeName(AT_PHDR), "AT_PHDR");
  EXPECT_EQ(auxvTypeName(AT_PAGESZ), "AT_PAGESZ");
  EXPECT_EQ(auxvTypeName(AT_ENTRY), "AT_ENTRY");
  EXPECT_EQ(auxvTypeName(AT_RANDOM), "AT_RANDOM");
  EXPECT_EQ(auxvTypeName(AT_EXECFN), "AT_EXECFN");
  EXPECT_EQ(auxvTypeName(AT_SYSINFO_EHDR), "AT_SYSINFO_EHDR");
  EXPECT_EQ(auxvTypeName(AT_MINSIGSTKSZ), "AT_MINSIGSTKSZ");
  EXPECT_EQ(auxvTypeName(AT_HWCAP2), "AT_HWCAP2");
  EXPECT_EQ(auxvTypeName(9999), "");
}

TEST(Pagemap, DecodesEveryBit) {
  PagemapEntry present = decodePagemapEntry(0x8100000000012345ull);
  EXPECT_TRUE(present.present);
  EXPECT_TRUE(present.exclusive);
  EXPECT_FALSE(present.swapped);
  EXPECT_FALSE(present.file_or_shared_anon);
  EXPECT_FALSE(present.soft_dirty);
  EXPECT_FALSE(present.uffd_wp);
  EXPECT_EQ(present.pfn, 0x12345u);

  PagemapEntry swapped = decodePagemapEntry((1ull << 62) | (1ull << 57) | (1ull << 55) | 0x7);
  EXPECT_FALSE(swapped.present);
  EXPECT_TRUE(swapped.swapped);
  EXPECT_TRUE(swapped.uffd_wp);
  EXPECT_TRUE(swapped.soft_dirty);
  EXPECT_EQ(swapped.pfn, 7u);

  PagemapEntry file = decodePagemapEntry((1ull << 61) | (1ull << 63) | ((1ull << 55) - 1));
  EXPECT_TRUE(file.file_or_shared_anon);
  EXPECT_EQ(file.pfn, (1ull << 55) - 1);
  EXPECT_FALSE(file.soft_dirty);

  PagemapEntry nothing = decodePagemapEntry(0);
  EXPECT_FALSE(nothing.present || nothing.swapped || nothing.exclusive);
}

TEST(Pagemap, LiveWrittenPageIsPresentAndUntouchedPageIsNot) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* memory = static_cast<char*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(memory, MAP_FAILED);
  memory[0] = 1; // first page written, second untouched

  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint64_t raw[2] = {};
  off_t offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(memory) / page * 8);
  ASSERT_EQ(pread(fd, raw, sizeof raw, offset), static_cast<ssize_t>(sizeof raw));
  close(fd);

  PagemapEntry written = decodePagemapEntry(raw[0]);
  EXPECT_TRUE(written.present);
  EXPECT_TRUE(written.exclusive);
  EXPECT_FALSE(written.file_or_shared_anon);
  PagemapEntry untouched = decodePagemapEntry(raw[1]);
  EXPECT_FALSE(untouched.present);
  EXPECT_FALSE(untouched.swapped);
  munmap(memory, 2 * page);
}

} // namespace
} // namespace procsnap
