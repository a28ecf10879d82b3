#include "common/proc/files.h"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace procsnap {
namespace {

TEST(ProcFiles, ReadsSizeZeroFilesToTheEnd) {
  auto maps = readProcFile("/proc/self/maps");
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  EXPECT_GT(maps->size(), 100u);
  EXPECT_EQ(maps->back(), '\n');

  // Alternating protections split one reservation into kPieces mappings, so that smaps
  // (about 1 KiB per mapping) is larger than one read chunk.
  constexpr size_t kPieces = 96;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* pieces = static_cast<char*>(
      mmap(nullptr, kPieces * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(pieces, MAP_FAILED);
  for (size_t i = 1; i < kPieces; i += 2)
    ASSERT_EQ(mprotect(pieces + i * page, page, PROT_READ | PROT_WRITE), 0);
  auto smaps = readProcFile("/proc/self/smaps");
  munmap(pieces, kPieces * page);
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  EXPECT_GT(smaps->size(), 64u * 1024);
  EXPECT_EQ(smaps->back(), '\n');
  auto entries = parseSmaps(*smaps);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  // Pieces at either end may merge with a neighbour, so count overlaps.
  size_t overlapping = 0;
  for (const SmapsEntry& entry : *entries)
    overlapping += entry.map.start < reinterpret_cast<uint64_t>(pieces + kPieces * page) &&
                   entry.map.end > reinterpret_cast<uint64_t>(pieces);
  EXPECT_EQ(overlapping, kPieces);

  auto auxv = readProcFileBytes("/proc/self/auxv");
  ASSERT_TRUE(auxv.ok()) << auxv.error().message;
  EXPECT_EQ(auxv->size() % 16, 0u);
}

TEST(ProcFiles, ErrorsMapToCodes) {
  auto missing = readProcFile("/proc/self/no-such-file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_EQ(missing.error().message,
            "cannot open /proc/self/no-such-file: no such file or directory");

  auto too_big = readProcFile("/proc/self/maps", 10);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ErrorCode::Unsupported);

  auto directory = readProcFile("/proc/self");
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, ErrorCode::Io);

  auto exact = readProcFile("/proc/self/comm");
  ASSERT_TRUE(exact.ok());
  auto exact_limit = readProcFile("/proc/self/comm", exact->size());
  EXPECT_TRUE(exact_limit.ok());
}

TEST(ProcFiles, PermissionDeniedForAnotherUsersMemory) {
  // As root, drop to nobody in a child first; the child reports through its exit code.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && setresuid(65534, 65534, 65534) != 0)
      _exit(2);
    auto mem = readProcFile("/proc/1/mem");
    _exit(!mem.ok() && mem.error().code == ErrorCode::PermissionDenied &&
                  mem.error().message.starts_with("cannot open /proc/1/mem: ")
              ? 0
              : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ProcFiles, ExitedProcessIsGone) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0)
    _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  auto maps = readMapsStable(child);
  ASSERT_FALSE(maps.ok());
  EXPECT_EQ(maps.error().code, ErrorCode::ProcessGone) << maps.error().message;
  auto smaps = readSmapsStable(child);
  ASSERT_FALSE(smaps.ok());
  EXPECT_EQ(smaps.error().code, ErrorCode::ProcessGone);
}

TEST(ProcFiles, StableReadsOfALiveProcess) {
  auto maps = readMapsStable(getpid());
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  auto smaps = readSmapsStable(getpid());
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  EXPECT_GT(maps->size(), 5u);
  EXPECT_GT(smaps->size(), 5u);
  EXPECT_EQ(procPath(42, "maps"), "/proc/42/maps");
}

} // namespace
} // namespace procsnap
