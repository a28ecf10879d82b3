#include "common/model/region_kind.h"
#include "common/proc/files.h"
#include "common/proc/smaps.h"
#include "tests/common/proc/seed_maps.h"
#include "tests/support/sample_process.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

// Globals of this test binary whose regions the live test checks. External linkage and the
// uses below keep them from being dropped.
int g_region_kind_initialised = 42;                    // .data
char g_region_kind_zeroed[1 << 20];                    // .bss, far bigger than a page
extern const char g_region_kind_constant[] = "rodata"; // .rodata

namespace procsnap {
namespace {

using K = RegionKind;

std::vector<MapsEntry> parseOrDie(std::string_view text) {
  auto entries = parseMaps(text);
  EXPECT_TRUE(entries.ok()) << (entries.ok() ? "" : entries.error().message);
  return entries.ok() ? entries.value() : std::vector<MapsEntry>{};
}

TEST(RegionKind, SeedPhpFpmListing) {
  std::vector<MapsEntry> maps = parseOrDie(test::kSeedPhpFpmMaps);
  ASSERT_EQ(maps.size(), 16u);
  std::vector<RegionKind> kinds = classifyRegions(maps);
  std::vector<RegionKind> expected = {
      K::Text, K::Rodata, K::Data,
      K::Bss, // the article calls the rw-p file mapping above ".bss"; it is .data (plus the
              // start of .bss), and this anonymous mapping is the rest of .bss
      K::Heap, K::Text, K::Guard, K::Rodata, K::Data,
      // ld-2.23.so's r-xp line was elided ("...") in the article, so nothing shows it is a
      // module here: its mappings are plain file mappings and the mapping after is anon.
      K::FileBacked, K::FileBacked, K::PrivateAnon, K::MainStack, K::Vvar, K::Vdso, K::Vsyscall};
  ASSERT_EQ(kinds.size(), expected.size());
  for (size_t i = 0; i < kinds.size(); ++i)
    EXPECT_EQ(kinds[i], expected[i]) << formatMapsLine(maps[i]) << " is " << toString(kinds[i]);
}

TEST(RegionKind, SyntheticEdgeCases) {
  std::vector<MapsEntry> maps = parseOrDie(
      // 0: module with its data and bss
      "10000-11000 r--p 00000000 fe:00 100 /opt/app/lib one.so\n"
      "11000-12000 r-xp 00001000 fe:00 100 /opt/app/lib one.so\n"
      "12000-13000 rw-p 00002000 fe:00 100 /opt/app/lib one.so\n"
      "13000-15000 rw-p 00000000 00:00 0 \n"
      // 4: a replaced library: same path, another inode, never executable -> not a module
      "20000-21000 r--p 00000000 fe:00 200 /opt/app/lib one.so (deleted)\n"
      "21000-22000 rw-p 00001000 fe:00 200 /opt/app/lib one.so (deleted)\n"
      "22000-23000 rw-p 00000000 00:00 0 \n"
      // 7: shared anonymous memory in all its spellings
      "30000-31000 rw-s 00000000 00:00 0 \n"
      "31000-32000 rw-s 00000000 00:01 1025 /dev/zero (deleted)\n"
      "32000-33000 rw-s 00000000 00:01 32769 /SYSV0000abcd (deleted)\n"
      "33000-34000 rw-p 00000000 00:01 2049 /memfd:jit (deleted)\n"
      "34000-35000 rw-s 00000000 00:01 2050 [anon_shmem:ring]\n"
      // 12: named and unnamed private anonymous memory, a thread stack with its guard
      "40000-41000 rw-p 00000000 00:00 0 [anon:arena]\n"
      "42000-43000 ---p 00000000 00:00 0 \n"
      "43000-53000 rw-p 00000000 00:00 0 \n"
      "60000-61000 rw-p 00000000 00:00 0 \n"
      // 16: a data file, a shared file mapping, a module's PROT_NONE gap
      "70000-71000 r--p 00000000 fe:00 300 /usr/lib/locale/C.utf8/LC_CTYPE\n"
      "71000-72000 rw-s 00000000 fe:00 301 /var/db/shared.db\n"
      "80000-81000 r-xp 00000000 fe:00 400 /lib/gap.so\n"
      "81000-82000 ---p 00001000 fe:00 400 /lib/gap.so\n"
      // 20: stack with an SP in it stays the main stack; pseudo names
      "7ff000000000-7ff000021000 rw-p 00000000 00:00 0 [stack]\n"
      "7ff000030000-7ff000034000 r--p 00000000 00:00 0 [vvar]\n"
      "7ff000034000-7ff000036000 r--p 00000000 00:00 0 [vvar_vclock]\n"
      "7ff000036000-7ff000038000 r-xp 00000000 00:00 0 [vdso]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n");
  const uint64_t stack_pointers[] = {0x52ff0, 0x7ff000020000};
  std::vector<RegionKind> kinds = classifyRegions(maps, stack_pointers);
  std::vector<RegionKind> expected = {
      K::Rodata,      K::Text,       K::Data,        K::Bss, //
      K::FileBacked,  K::FileBacked, K::PrivateAnon,         //
      K::SharedAnon,  K::SharedAnon, K::SharedAnon,  K::SharedAnon,  K::SharedAnon,
      K::PrivateAnon, K::Guard,      K::ThreadStack, K::PrivateAnon, //
      K::FileBacked,  K::FileBacked, K::Text,        K::Guard,       //
      K::MainStack,   K::Vvar,       K::Vvar,        K::Vdso,        K::Vsyscall};
  ASSERT_EQ(kinds.size(), expected.size());
  for (size_t i = 0; i < kinds.size(); ++i)
    EXPECT_EQ(kinds[i], expected[i])
        << i << ": " << formatMapsLine(maps[i]) << " is " << toString(kinds[i]);

  // Without stack pointers the thread stack is plain anonymous memory.
  EXPECT_EQ(classifyRegions(maps)[14], K::PrivateAnon);
}

TEST(RegionKind, BssOnlyAfterTheLastWritableMappingOfAModule) {
  std::vector<MapsEntry> maps = parseOrDie("11000-12000 r-xp 00001000 fe:00 100 /lib/a.so\n"
                                           "12000-13000 rw-p 00002000 fe:00 100 /lib/a.so\n"
                                           "13000-14000 rw-p 00000000 00:00 0 \n"
                                           "14000-15000 rw-p 00003000 fe:00 100 /lib/a.so\n"
                                           "15000-16000 r--p 00000000 00:00 0 \n"
                                           "16000-17000 rw-p 00000000 00:00 0 \n");
  std::vector<RegionKind> kinds = classifyRegions(maps);
  EXPECT_EQ(kinds[2], K::PrivateAnon); // follows a writable mapping that is not the last
  EXPECT_EQ(kinds[3], K::Data);
  EXPECT_EQ(kinds[4], K::PrivateAnon); // read-only: not .bss
}

TEST(RegionKind, NamesRoundTrip) {
  const std::vector<std::string_view> names = {"text",  "rodata",       "data", "bss",  "heap",
                                               "stack", "thread-stack", "vdso", "vvar", "vsyscall",
                                               "anon",  "shared-anon",  "file", "guard"};
  ASSERT_EQ(names.size(), static_cast<size_t>(kRegionKindCount));
  for (int i = 0; i < kRegionKindCount; ++i) {
    auto kind = static_cast<RegionKind>(i);
    EXPECT_EQ(toString(kind), names[static_cast<size_t>(i)]);
    EXPECT_EQ(regionKindFromString(toString(kind)), kind);
  }
  EXPECT_EQ(regionKindFromString("nonsense"), std::nullopt);
}

int regionKindTestFunction(int x) {
  return x * 3 + g_region_kind_initialised;
}

RegionKind kindAt(const std::vector<MapsEntry>& maps, const std::vector<RegionKind>& kinds,
                  const void* address) {
  auto value = reinterpret_cast<uint64_t>(address);
  for (size_t i = 0; i < maps.size(); ++i)
    if (value >= maps[i].start && value < maps[i].end)
      return kinds[i];
  ADD_FAILURE() << "no mapping holds " << address;
  return K::Guard;
}

TEST(RegionKind, LiveSelfBinaryAndThreadStack) {
  // Touch the globals so the compiler keeps them and their pages are real.
  g_region_kind_zeroed[sizeof g_region_kind_zeroed - 1] = 1;
  ASSERT_EQ(regionKindTestFunction(1), 45);
  ASSERT_EQ(std::strlen(g_region_kind_constant), 6u);

  // A thread that reports an address on its stack and waits until told to finish.
  std::promise<uint64_t> stack_address;
  std::promise<void> finish;
  std::shared_future<void> finished = finish.get_future().share();
  std::thread thread([&stack_address, finished] {
    volatile int local = 0;
    stack_address.set_value(reinterpret_cast<uint64_t>(&local));
    finished.wait_for(std::chrono::seconds(30)); // bounded even if the test fails early
  });
  auto future = stack_address.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  uint64_t thread_sp = future.get();

  // Allocated before maps is read, so the heap holds it when the listing is taken.
  auto block = std::make_unique<char[]>(64);
  auto maps = readMapsStable(getpid());
  finish.set_value();
  thread.join();
  ASSERT_TRUE(maps.ok()) << maps.error().message;

  volatile int main_local = 0;
  const uint64_t sps[] = {thread_sp, reinterpret_cast<uint64_t>(&main_local)};
  std::vector<RegionKind> kinds = classifyRegions(*maps, sps);

  EXPECT_EQ(kindAt(*maps, kinds, reinterpret_cast<const void*>(thread_sp)), K::ThreadStack);
  EXPECT_EQ(kindAt(*maps, kinds, const_cast<int*>(&main_local)), K::MainStack);
  EXPECT_EQ(kindAt(*maps, kinds, reinterpret_cast<const void*>(&regionKindTestFunction)), K::Text);
  EXPECT_EQ(kindAt(*maps, kinds, &g_region_kind_initialised), K::Data);
  EXPECT_EQ(kindAt(*maps, kinds, g_region_kind_constant), K::Rodata);
  RegionKind zeroed_start = kindAt(*maps, kinds, &g_region_kind_zeroed[0]);
  EXPECT_TRUE(zeroed_start == K::Bss || zeroed_start == K::Data) << toString(zeroed_start);
  EXPECT_EQ(kindAt(*maps, kinds, &g_region_kind_zeroed[sizeof g_region_kind_zeroed - 1]), K::Bss);
#ifndef __SANITIZE_ADDRESS__ // ASan's allocator does not use brk
  // malloc'd memory of the main thread lives in [heap] (glibc's main arena).
  EXPECT_EQ(kindAt(*maps, kinds, block.get()), K::Heap);
#endif
}

// The sample target knows where its globals, heap blocks, thread stacks and special regions
// are; every one of them must land in the region kind it was made to be.
class RegionKindOnSample : public ::testing::TestWithParam<test::SampleVariant> {};

TEST_P(RegionKindOnSample, TruthAddressesAreClassifiedRight) {
  auto started = test::SampleProcess::start(GetParam());
  ASSERT_TRUE(started.ok()) << started.error().message;
  const test::SampleProcess& sample = **started;
  const nlohmann::json& truth = sample.truth();

  auto smaps = readSmapsStable(sample.pid());
  ASSERT_TRUE(smaps.ok()) << smaps.error().message;
  std::vector<MapsEntry> maps;
  for (const SmapsEntry& entry : *smaps)
    maps.push_back(entry.map);
  std::vector<uint64_t> stack_pointers;
  for (const auto& thread : truth.at("threads"))
    stack_pointers.push_back(test::addressOf(thread.at("stack_marker_addr")));
  ASSERT_FALSE(stack_pointers.empty());
  std::vector<RegionKind> kinds = classifyRegions(maps, stack_pointers);

  auto indexOf = [&](uint64_t address) -> size_t {
    for (size_t i = 0; i < maps.size(); ++i)
      if (address >= maps[i].start && address < maps[i].end)
        return i;
    ADD_FAILURE() << "no mapping holds " << std::hex << address;
    return 0;
  };
  auto kindOf = [&](const nlohmann::json& value) { return kinds[indexOf(test::addressOf(value))]; };

  EXPECT_EQ(kindOf(truth["data_counter"]["addr"]), K::Data);
  EXPECT_EQ(kindOf(truth["data_message"]["addr"]), K::Data);
  EXPECT_EQ(kindOf(truth["rodata_string"]["addr"]), K::Rodata);
  const uint64_t bss = test::addressOf(truth["bss_array"]["addr"]);
  const uint64_t bss_size = truth["bss_array"]["size"].get<uint64_t>();
  EXPECT_EQ(kinds[indexOf(bss + bss_size - 1)], K::Bss);
  RegionKind counter = kindOf(truth["bss_counter"]["addr"]);
  EXPECT_TRUE(counter == K::Bss || counter == K::Data) << toString(counter);
  EXPECT_EQ(kindOf(truth["heap_small"]["addr"]), K::Heap);
  EXPECT_EQ(kindOf(truth["heap_large"]["addr"]), K::PrivateAnon);
  for (uint64_t sp : stack_pointers)
    EXPECT_EQ(kinds[indexOf(sp)], K::ThreadStack);
  EXPECT_EQ(kindOf(truth["prot_none"]["addr"]), K::Guard);
  EXPECT_EQ(kindOf(truth["reservation"]["addr"]), K::PrivateAnon);

  size_t dontdump = indexOf(test::addressOf(truth["dontdump"]["addr"]));
  EXPECT_EQ(kinds[dontdump], K::PrivateAnon);
  EXPECT_TRUE((*smaps)[dontdump].dontDump());

  size_t file = indexOf(test::addressOf(truth["file_mapping"]["addr"]));
  EXPECT_EQ(kinds[file], K::FileBacked);
  EXPECT_EQ(maps[file].path, truth["file_mapping"]["path"].get<std::string>());

  size_t memfd = indexOf(test::addressOf(truth["memfd"]["addr"]));
  EXPECT_EQ(kinds[memfd], K::SharedAnon);
  EXPECT_TRUE(maps[memfd].path.starts_with("/memfd:")) << maps[memfd].path;
  EXPECT_TRUE(maps[memfd].perms.shared);

  // The sample's executable is a module: text, rodata and data all present.
  const std::string exe = truth["exe"].get<std::string>();
  std::set<RegionKind> exe_kinds;
  for (size_t i = 0; i < maps.size(); ++i)
    if (maps[i].path == exe)
      exe_kinds.insert(kinds[i]);
  EXPECT_EQ(exe_kinds, (std::set<RegionKind>{K::Text, K::Rodata, K::Data}));
}

INSTANTIATE_TEST_SUITE_P(Variants, RegionKindOnSample,
                         ::testing::Values(test::SampleVariant::Pie, test::SampleVariant::NoPie),
                         [](const auto& info) {
                           return info.param == test::SampleVariant::Pie ? "Pie" : "NoPie";
                         });

} // namespace
} // namespace procsnap
