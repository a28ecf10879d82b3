#include "capture/process_inspector.h"

#include "capture/frozen_process.h"
#include "common/proc/maps.h"
#include "tests/capture/forked_target.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <elf.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace procsnap {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(ProcessInspectorTest, ProcessInfoMatchesProc) {
  auto target = test::ForkedTarget::start({});
  ASSERT_TRUE(target);
  const pid_t pid = target->pid();
  auto info = readProcessInfo(pid, false);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->pid, pid);
  EXPECT_EQ(info->ppid, getpid());
  char exe[PATH_MAX] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof exe - 1), 0);
  EXPECT_EQ(info->exe, exe); // a fork runs the test binary
  char cwd[PATH_MAX] = {};
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(info->cwd, cwd);
  std::string comm = slurp("/proc/self/comm");
  comm.pop_back();
  EXPECT_EQ(info->comm, comm);
  ASSERT_FALSE(info->cmdline.empty());
  EXPECT_EQ(info->coredump_filter, std::stoul(slurp("/proc/self/coredump_filter"), nullptr, 16));
  EXPECT_EQ(info->uid[0], getuid());
  EXPECT_EQ(info->gid[0], getgid());
  EXPECT_NE(info->limits.find("Max open files"), std::string::npos);
  bool page_size_seen = false;
  for (const AuxvEntry& entry : info->auxv)
    if (entry.type == AT_PAGESZ)
      page_size_seen = entry.value == 4096;
  EXPECT_TRUE(page_size_seen);
  EXPECT_FALSE(info->has_environ);
  EXPECT_TRUE(info->environ.empty());
  bool threads_field = false;
  for (const auto& [key, value] : info->status)
    if (key == "Threads")
      threads_field = value == "1";
  EXPECT_TRUE(threads_field);
}

TEST(ProcessInspectorTest, EnvironOnlyWhenAsked) {
  auto target = test::ForkedTarget::start({});
  ASSERT_TRUE(target);
  auto info = readProcessInfo(target->pid(), true);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_TRUE(info->has_environ);
  const char* path = getenv("PATH");
  if (path != nullptr) {
    EXPECT_NE(std::find(info->environ.begin(), info->environ.end(), std::string("PATH=") + path),
              info->environ.end());
  }
}

TEST(ProcessInspectorTest, MissingProcessIsNotFound) {
  auto info = readProcessInfo(INT_MAX, false);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ErrorCode::NotFound);
  EXPECT_EQ(info.error().message, "no such process: " + std::to_string(INT_MAX));
  EXPECT_FALSE(readRegions(INT_MAX, {}).ok());
}

TEST(ProcessInspectorTest, HostInfo) {
  const HostInfo host = readHostInfo();
  char hostname[256] = {};
  gethostname(hostname, sizeof hostname - 1);
  EXPECT_EQ(host.hostname, hostname);
  EXPECT_EQ(host.page_size, 4096u);
  EXPECT_FALSE(host.kernel_release.empty());
  EXPECT_FALSE(host.machine.empty());
  EXPECT_EQ(host.boot_id.size(), 36u);
}

TEST(ProcessInspectorTest, RegionsMatchMapsAndFindThreadStacks) {
  auto target = test::ForkedTarget::start({.sleeping_threads = 2});
  ASSERT_TRUE(target);
  auto frozen = FrozenProcess::freeze(target->pid());
  ASSERT_TRUE(frozen.ok()) << frozen.error().message;
  auto regions = readRegions(target->pid(), (*frozen)->stackPointers());
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  auto maps = parseMaps(slurp("/proc/" + std::to_string(target->pid()) + "/maps"));
  ASSERT_TRUE(maps.ok());
  ASSERT_EQ(regions->size(), maps->size());
  for (size_t i = 0; i < maps->size(); ++i) {
    EXPECT_EQ((*regions)[i].map(), (*maps)[i]);
    EXPECT_TRUE((*regions)[i].pages.empty());
    EXPECT_TRUE((*regions)[i].smaps.field("Rss").has_value()); // smaps was read
  }
  int thread_stacks = 0;
  bool heap = false, main_stack = false, vdso = false;
  for (const RegionRecord& region : *regions) {
    thread_stacks += region.kind == RegionKind::ThreadStack;
    heap |= region.kind == RegionKind::Heap;
    main_stack |= region.kind == RegionKind::MainStack;
    vdso |= region.kind == RegionKind::Vdso;
  }
  EXPECT_EQ(thread_stacks, 2);
  EXPECT_TRUE(main_stack);
  EXPECT_TRUE(vdso);
  (void)heap; // a forked gtest binary has a heap, but glibc may not have used brk
}

TEST(ProcessInspectorTest, SampleTargetRegions) {
  auto sample = test::SampleProcess::start(test::SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto regions = readRegions((*sample)->pid(), {});
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  const uint64_t dontdump = test::addressOf((*sample)->truth()["dontdump"]["addr"]);
  bool found = false;
  for (const RegionRecord& region : *regions)
    if (dontdump >= region.map().start && dontdump < region.map().end)
      found = region.smaps.dontDump();
  EXPECT_TRUE(found);
  auto info = readProcessInfo((*sample)->pid(), false);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->exe, (*sample)->truth()["exe"].get<std::string>());
}

} // namespace
} // namespace procsnap
