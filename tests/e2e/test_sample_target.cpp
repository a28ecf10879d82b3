// Checks the sample target's line of truth against the operating system (/proc maps, smaps,
// task, process_vm_readv, nm, readelf), so other tests can trust it; and the test support
// that starts samples and runs commands.
//
// /proc is parsed here with a few lines of sscanf on purpose: this is the oracle for common/'s
// parsers, so it must not depend on them.

#include "tests/support/run_command.h"
#include "tests/support/sample_process.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace procsnap::test {
namespace {

using nlohmann::json;

constexpr uint64_t kReservationBytes = 32ull << 30;
constexpr uint32_t kBssPattern = 0x5a5a5a5a;
// Bounded waits for things the sample does asynchronously (exit, report files).
constexpr auto kAsyncWait = std::chrono::seconds(5);
constexpr int kToolTimeoutSeconds = 30;

struct Mapping {
  uint64_t start = 0, end = 0;
  std::string perms;
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string path;                         // may end in " (deleted)"
  std::map<std::string, std::string> smaps; // "Rss" -> "4 kB", "VmFlags" -> "rd wr ..."

  bool contains(uint64_t address, uint64_t size = 1) const {
    return address >= start && address + size <= end;
  }
  std::string field(const std::string& key) const {
    auto found = smaps.find(key);
    return found == smaps.end() ? "" : found->second;
  }
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Parses /proc/PID/smaps: the maps lines plus each mapping's "Key: value" fields.
std::vector<Mapping> readMappings(pid_t pid) {
  std::vector<Mapping> mappings;
  std::istringstream lines(readFile("/proc/" + std::to_string(pid) + "/smaps"));
  std::string line;
  while (std::getline(lines, line)) {
    Mapping mapping;
    char perms[8] = {};
    unsigned dev_major = 0, dev_minor = 0;
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset,
                    &dev_major, &dev_minor, &inode, &path_at) >= 7 &&
        line.find('-') < line.find(' ')) {
      mapping.start = start;
      mapping.end = end;
      mapping.perms = perms;
      mapping.offset = offset;
      mapping.inode = inode;
      mapping.path = path_at > 0 ? line.substr(static_cast<size_t>(path_at)) : "";
      mappings.push_back(mapping);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos || mappings.empty())
      continue;
    size_t value_at = line.find_first_not_of(' ', colon + 1);
    mappings.back().smaps[line.substr(0, colon)] =
        value_at == std::string::npos ? "" : line.substr(value_at);
  }
  return mappings;
}

const Mapping* findMapping(const std::vector<Mapping>& mappings, uint64_t address) {
  for (const Mapping& mapping : mappings)
    if (mapping.contains(address))
      return &mapping;
  return nullptr;
}

std::optional<std::string> readRemote(pid_t pid, uint64_t address, size_t size) {
  std::string bytes(size, '\0');
  iovec local{bytes.data(), size};
  iovec remote{reinterpret_cast<void*>(address), size};
  ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(size))
    return std::nullopt;
  return bytes;
}

uint64_t readRemoteU64(pid_t pid, uint64_t address) {
  std::optional<std::string> bytes = readRemote(pid, address, 8);
  uint64_t value = ~0ull;
  if (bytes)
    std::memcpy(&value, bytes->data(), 8);
  return value;
}

// The value string stored at entry["addr"], read back from the process.
void expectValueAt(pid_t pid, const json& entry, const std::string& value_key = "value") {
  ASSERT_TRUE(entry.contains("addr") && entry.contains(value_key)) << entry.dump();
  std::string expected = entry[value_key].get<std::string>();
  std::optional<std::string> actual = readRemote(pid, addressOf(entry["addr"]), expected.size());
  ASSERT_TRUE(actual.has_value()) << "unreadable: " << entry.dump();
  EXPECT_EQ(*actual, expected);
}

std::string exeOf(const json& truth) {
  return truth["exe"].get<std::string>();
}

// The exe's mapping holding `address`, with these permissions.
void expectInExeMapping(const std::vector<Mapping>& mappings, const json& truth, uint64_t address,
                        uint64_t size, const std::string& perms) {
  const Mapping* mapping = findMapping(mappings, address);
  ASSERT_NE(mapping, nullptr) << std::hex << address;
  EXPECT_EQ(mapping->path, exeOf(truth));
  EXPECT_EQ(mapping->perms, perms);
  EXPECT_TRUE(mapping->contains(address, size));
}

void expectInAnonymousMapping(const std::vector<Mapping>& mappings, uint64_t address, uint64_t size,
                              const std::string& perms, const std::string& path = "") {
  const Mapping* mapping = findMapping(mappings, address);
  ASSERT_NE(mapping, nullptr) << std::hex << address;
  EXPECT_EQ(mapping->perms, perms) << std::hex << address;
  EXPECT_EQ(mapping->path, path) << std::hex << address;
  EXPECT_EQ(mapping->inode, 0u);
  EXPECT_TRUE(mapping->contains(address, size)) << std::hex << address << " + " << size;
}

// .bss begins in the exe's rw mapping and goes on in the anonymous mapping right after it.
void expectInBss(const std::vector<Mapping>& mappings, const json& truth, uint64_t address,
                 uint64_t size) {
  for (uint64_t at : {address, address + size - 1}) {
    const Mapping* mapping = findMapping(mappings, at);
    ASSERT_NE(mapping, nullptr) << std::hex << at;
    EXPECT_EQ(mapping->perms, "rw-p");
    if (mapping->path == exeOf(truth))
      continue;
    EXPECT_TRUE(mapping->path.empty() || mapping->path == "[heap]") << mapping->path;
    const Mapping* before = findMapping(mappings, mapping->start - 1);
    ASSERT_NE(before, nullptr) << "nothing right before the bss mapping";
    EXPECT_EQ(before->path, exeOf(truth));
    EXPECT_EQ(before->perms, "rw-p");
  }
}

// Address bias of the exe: where its file offset 0 is mapped minus the lowest PT_LOAD vaddr,
// which is 0 for PIE and 0x400000 for a non-PIE x86-64 link.
uint64_t loadBias(const std::vector<Mapping>& mappings, const json& truth) {
  for (const Mapping& mapping : mappings)
    if (mapping.path == exeOf(truth) && mapping.offset == 0)
      return truth["variant"] == "pie" ? mapping.start : 0;
  ADD_FAILURE() << "no mapping of the exe at file offset 0";
  return 0;
}

struct NmSymbol {
  uint64_t value = 0;
  char type = '?';
};

std::map<std::string, NmSymbol> nmSymbols(const std::string& exe) {
  CommandResult result = runCommand({"nm", exe}, kToolTimeoutSeconds);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::map<std::string, NmSymbol> symbols;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    unsigned long long value = 0;
    char type = 0;
    char name[256] = {};
    if (std::sscanf(line.c_str(), "%llx %c %255s", &value, &type, name) == 3)
      symbols[name] = NmSymbol{value, type};
  }
  return symbols;
}

// Waits (bounded) until predicate() holds.
template <typename Predicate> bool waitFor(Predicate predicate) {
  const auto deadline = std::chrono::steady_clock::now() + kAsyncWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

class SampleTargetTest : public ::testing::TestWithParam<SampleVariant> {
protected:
  void SetUp() override {
    auto started = SampleProcess::start(GetParam());
    ASSERT_TRUE(started.ok()) << started.error().message;
    sample_ = std::move(started.value());
  }

  const json& truth() const { return sample_->truth(); }
  pid_t pid() const { return sample_->pid(); }

  std::unique_ptr<SampleProcess> sample_;
};

TEST_P(SampleTargetTest, TruthDescribesThisProcess) {
  EXPECT_EQ(truth()["pid"].get<pid_t>(), pid());
  EXPECT_EQ(truth()["main_tid"].get<pid_t>(), pid());
  EXPECT_EQ(truth()["variant"], GetParam() == SampleVariant::Pie ? "pie" : "nopie");
  EXPECT_EQ(truth()["generation"], 0);
  char exe[4096] = {};
  ASSERT_GT(readlink(("/proc/" + std::to_string(pid()) + "/exe").c_str(), exe, sizeof exe - 1), 0);
  EXPECT_EQ(exeOf(truth()), exe);
  EXPECT_TRUE(sample_->alive());
  EXPECT_EQ(sample_->statusField("Threads"), "3");
  EXPECT_EQ(sample_->statusField("TracerPid"), "0");
  EXPECT_EQ(sample_->statusField("NoSuchField"), "");
}

TEST_P(SampleTargetTest, EveryAddressLiesInTheRightMapping) {
  std::vector<Mapping> maps = readMappings(pid());
  const json& t = truth();
  expectInExeMapping(maps, t, addressOf(t["data_counter"]["addr"]), 8, "rw-p");
  expectInExeMapping(maps, t, addressOf(t["data_message"]["addr"]), 64, "rw-p");
  expectInExeMapping(maps, t, addressOf(t["rodata_string"]["addr"]), 32, "r--p");
  expectInBss(maps, t, addressOf(t["bss_array"]["addr"]), t["bss_array"]["size"]);
  expectInBss(maps, t, addressOf(t["bss_counter"]["addr"]), 8);
  expectInAnonymousMapping(maps, addressOf(t["heap_small"]["addr"]), 64, "rw-p", "[heap]");
  expectInAnonymousMapping(maps, addressOf(t["heap_large"]["addr"]), t["heap_large"]["size"],
                           "rw-p");
  for (const json& thread : t["threads"])
    expectInAnonymousMapping(maps, addressOf(thread["stack_marker_addr"]), 64, "rw-p");
  expectInAnonymousMapping(maps, addressOf(t["prot_none"]["addr"]), 65536, "---p");
  expectInAnonymousMapping(maps, addressOf(t["dontdump"]["addr"]), 65536, "rw-p");

  uint64_t reservation = addressOf(t["reservation"]["addr"]);
  EXPECT_EQ(t["reservation"]["size"].get<uint64_t>(), kReservationBytes);
  expectInAnonymousMapping(maps, reservation, kReservationBytes, "rw-p");
  const Mapping* reserved = findMapping(maps, reservation);
  ASSERT_NE(reserved, nullptr);
  EXPECT_GE(reserved->end - reserved->start, kReservationBytes);
  EXPECT_EQ(reserved->field("Rss"), "0 kB") << "the reservation must stay untouched";

  const Mapping* file = findMapping(maps, addressOf(t["file_mapping"]["addr"]));
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->path, t["file_mapping"]["path"].get<std::string>());
  EXPECT_EQ(file->perms, "r--p");
  EXPECT_EQ(file->offset, 0u);
  EXPECT_EQ(file->end - file->start, 65536u);
  struct stat file_stat {};
  ASSERT_EQ(stat(file->path.c_str(), &file_stat), 0) << file->path;
  EXPECT_EQ(static_cast<uint64_t>(file_stat.st_ino), file->inode);

  const Mapping* memfd = findMapping(maps, addressOf(t["memfd"]["addr"]));
  ASSERT_NE(memfd, nullptr);
  EXPECT_EQ(memfd->perms, "rw-s");
  EXPECT_EQ(memfd->path.rfind("/memfd:procsnap-memfd", 0), 0u) << memfd->path;
  EXPECT_TRUE(memfd->contains(addressOf(t["memfd"]["addr"]), 65536));
}

TEST_P(SampleTargetTest, DontdumpRegionIsMarkedInSmaps) {
  std::vector<Mapping> maps = readMappings(pid());
  const Mapping* dontdump = findMapping(maps, addressOf(truth()["dontdump"]["addr"]));
  ASSERT_NE(dontdump, nullptr);
  std::istringstream flags(dontdump->field("VmFlags"));
  std::vector<std::string> words{std::istream_iterator<std::string>(flags), {}};
  EXPECT_NE(std::find(words.begin(), words.end(), "dd"), words.end()) << dontdump->field("VmFlags");
  // And only there: the ordinary heap is dumpable.
  const Mapping* heap = findMapping(maps, addressOf(truth()["heap_large"]["addr"]));
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->field("VmFlags").find(" dd"), std::string::npos);
}

TEST_P(SampleTargetTest, ValuesReadBackFromTheProcess) {
  const json& t = truth();
  EXPECT_EQ(readRemoteU64(pid(), addressOf(t["data_counter"]["addr"])), 1234567u);
  EXPECT_EQ(t["data_counter"]["value"], 1234567);
  EXPECT_EQ(readRemoteU64(pid(), addressOf(t["bss_counter"]["addr"])), 0u);
  EXPECT_EQ(t["bss_counter"]["value"], 0);

  std::optional<std::string> message = readRemote(pid(), addressOf(t["data_message"]["addr"]), 64);
  ASSERT_TRUE(message);
  EXPECT_EQ(std::string(message->c_str()), "procsnap-data-message-v0");
  EXPECT_EQ(t["data_message"]["value"], "procsnap-data-message-v0");
  EXPECT_EQ(message->find_first_not_of('\0', 24), std::string::npos) << "not NUL-padded";

  std::optional<std::string> rodata = readRemote(pid(), addressOf(t["rodata_string"]["addr"]), 32);
  ASSERT_TRUE(rodata);
  EXPECT_EQ(*rodata, std::string("procsnap-rodata-constant-string", 32)); // with its NUL
  EXPECT_EQ(t["rodata_string"]["value"], "procsnap-rodata-constant-string");

  expectValueAt(pid(), t["heap_small"]);
  EXPECT_EQ(t["heap_small"]["value"], "procsnap-heap-marker-small");
  expectValueAt(pid(), t["heap_large"]);
  EXPECT_EQ(t["heap_large"]["value"], "procsnap-heap-marker-large");
  EXPECT_GE(t["heap_large"]["size"].get<uint64_t>(), 4u << 20);
  expectValueAt(pid(), t["dontdump"], "secret");
  expectValueAt(pid(), t["file_mapping"]);
  expectValueAt(pid(), t["memfd"]);
  for (const json& thread : t["threads"]) {
    json entry = {{"addr", thread["stack_marker_addr"]}, {"value", thread["stack_marker"]}};
    expectValueAt(pid(), entry);
  }
  EXPECT_EQ(t["threads"][0]["stack_marker"], "procsnap-stack-marker-1");
  EXPECT_EQ(t["threads"][1]["stack_marker"], "procsnap-stack-marker-2");

  // The file mapping shows what the file holds.
  std::string file = readFile(t["file_mapping"]["path"].get<std::string>());
  ASSERT_EQ(file.size(), 65536u);
  std::optional<std::string> mapped =
      readRemote(pid(), addressOf(t["file_mapping"]["addr"]), file.size());
  ASSERT_TRUE(mapped);
  EXPECT_EQ(*mapped, file);

  // The large heap block is text all the way, as `strings` needs.
  uint64_t large_size = t["heap_large"]["size"];
  std::optional<std::string> large =
      readRemote(pid(), addressOf(t["heap_large"]["addr"]), large_size);
  ASSERT_TRUE(large);
  EXPECT_EQ(large->find('\0'), std::string::npos);
  EXPECT_NE(large->find("line 000123 procsnap large heap text\n"), std::string::npos);

  // PROT_NONE really is inaccessible through process_vm_readv.
  EXPECT_FALSE(readRemote(pid(), addressOf(t["prot_none"]["addr"]), 8).has_value());
}

TEST_P(SampleTargetTest, BssArrayHoldsItsPattern) {
  uint64_t size = truth()["bss_array"]["size"];
  ASSERT_EQ(size, 4194304u);
  std::optional<std::string> bytes =
      readRemote(pid(), addressOf(truth()["bss_array"]["addr"]), size);
  ASSERT_TRUE(bytes);
  size_t mismatches = 0;
  for (uint32_t i = 0; i < size / 4; ++i) {
    uint32_t word = 0;
    std::memcpy(&word, bytes->data() + size_t{i} * 4, 4);
    mismatches += word != (i ^ kBssPattern);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_P(SampleTargetTest, NmAgreesWithTheAddresses) {
  std::vector<Mapping> maps = readMappings(pid());
  uint64_t bias = loadBias(maps, truth());
  CommandResult header = runCommand({"readelf", "-hW", exeOf(truth())}, kToolTimeoutSeconds);
  ASSERT_EQ(header.exit_code, 0) << header.err;
  if (GetParam() == SampleVariant::Pie) {
    EXPECT_NE(header.out.find("DYN"), std::string::npos);
    EXPECT_NE(bias, 0u);
  } else {
    EXPECT_NE(header.out.find("EXEC"), std::string::npos);
  }

  std::map<std::string, NmSymbol> symbols = nmSymbols(exeOf(truth()));
  struct Expected {
    const char* symbol;
    const char* key;
    char type;
  };
  for (Expected expected :
       {Expected{"g_data_counter", "data_counter", 'D'},
        Expected{"g_data_message", "data_message", 'D'},
        Expected{"g_rodata_string", "rodata_string", 'R'},
        Expected{"g_bss_array", "bss_array", 'B'}, Expected{"g_bss_counter", "bss_counter", 'B'}}) {
    SCOPED_TRACE(expected.symbol);
    auto found = symbols.find(expected.symbol);
    ASSERT_NE(found, symbols.end());
    EXPECT_EQ(found->second.type, expected.type);
    EXPECT_EQ(found->second.value, addressOf(truth()[expected.key]["addr"]) - bias);
  }
}

TEST_P(SampleTargetTest, ThreadsExistWithTheirNames) {
  auto comm = [this](pid_t tid) {
    std::string name =
        readFile("/proc/" + std::to_string(pid()) + "/task/" + std::to_string(tid) + "/comm");
    return name.substr(0, name.find('\n'));
  };
  const json& threads = truth()["threads"];
  ASSERT_EQ(threads.size(), 2u);
  EXPECT_EQ(threads[0]["name"], "sample-worker1");
  EXPECT_EQ(threads[1]["name"], "sample-worker2");
  for (const json& thread : threads)
    EXPECT_EQ(comm(thread["tid"].get<pid_t>()), thread["name"].get<std::string>());
  std::string main_name = comm(truth()["main_tid"].get<pid_t>());
  EXPECT_EQ(main_name.rfind("sample_target", 0), 0u) << main_name;
}

TEST_P(SampleTargetTest, MutateChangesKnownValues) {
  for (int generation = 1; generation <= 2; ++generation) {
    SCOPED_TRACE(generation);
    Result<json> mutated = sample_->mutate();
    ASSERT_TRUE(mutated.ok()) << mutated.error().message;
    const json& t = *mutated;
    EXPECT_EQ(t, truth());
    EXPECT_EQ(t["generation"], generation);
    uint64_t counter = 1234567 + 1000 * generation;
    EXPECT_EQ(t["data_counter"]["value"].get<uint64_t>(), counter);
    EXPECT_EQ(readRemoteU64(pid(), addressOf(t["data_counter"]["addr"])), counter);
    EXPECT_EQ(t["bss_counter"]["value"], generation);
    EXPECT_EQ(readRemoteU64(pid(), addressOf(t["bss_counter"]["addr"])),
              static_cast<uint64_t>(generation));
    std::string message = "procsnap-data-message-v" + std::to_string(generation);
    EXPECT_EQ(t["data_message"]["value"], message);
    expectValueAt(pid(), t["data_message"]);

    const json& grown = t["heap_grown"];
    ASSERT_EQ(grown.size(), 2u * generation);
    std::vector<Mapping> maps = readMappings(pid());
    for (int g = 1; g <= generation; ++g) {
      const json& large = grown[2 * (g - 1)];
      const json& small = grown[2 * (g - 1) + 1];
      EXPECT_EQ(large["value"], "procsnap-heap-grown-" + std::to_string(g));
      EXPECT_EQ(large["size"], 8u << 20);
      EXPECT_EQ(small["value"], "procsnap-heap-grown-small-" + std::to_string(g));
      EXPECT_FALSE(small.contains("size"));
      expectValueAt(pid(), large);
      expectValueAt(pid(), small);
      expectInAnonymousMapping(maps, addressOf(large["addr"]), 8u << 20, "rw-p");
      std::optional<std::string> tail =
          readRemote(pid(), addressOf(large["addr"]) + (8u << 20) - 4096, 4096);
      ASSERT_TRUE(tail);
      EXPECT_NE(tail->find("procsnap-heap-grown-" + std::to_string(g) + " line "),
                std::string::npos);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SampleTargetTest,
                         ::testing::Values(SampleVariant::Pie, SampleVariant::NoPie),
                         [](const ::testing::TestParamInfo<SampleVariant>& info) {
                           return info.param == SampleVariant::Pie ? "Pie" : "NoPie";
                         });

TEST(SampleTarget, SigtermExitsCleanlyAndRemovesItsFile) {
  auto sample = SampleProcess::start(SampleVariant::Pie);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  std::string path = (*sample)->truth()["file_mapping"]["path"];
  ASSERT_EQ(access(path.c_str(), F_OK), 0);
  ASSERT_EQ(kill((*sample)->pid(), SIGTERM), 0);
  EXPECT_TRUE(waitFor([&] { return !(*sample)->alive(); }));
  EXPECT_NE(access(path.c_str(), F_OK), 0) << path << " still exists";
}

TEST(SampleTarget, DestructorKillsAndRemovesTheFile) {
  pid_t pid = 0;
  std::string path;
  {
    auto sample = SampleProcess::start(SampleVariant::NoPie);
    ASSERT_TRUE(sample.ok()) << sample.error().message;
    pid = (*sample)->pid();
    path = (*sample)->truth()["file_mapping"]["path"];
  }
  EXPECT_NE(kill(pid, 0), 0) << "sample still exists";
  EXPECT_NE(access(path.c_str(), F_OK), 0) << path << " still exists";
}

TEST(SampleTarget, ExitAfterEndsALeakedSample) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--exit-after", "1"});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  EXPECT_TRUE((*sample)->alive());
  EXPECT_TRUE(waitFor([&] { return !(*sample)->alive(); }));
}

TEST(SampleTarget, PauseMonitorMeasuresAStop) {
  auto dir = TempDir::create();
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  std::string report_path = dir->file("pause.json");
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--pause-monitor", report_path});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  pid_t pid = (*sample)->pid();
  const json& t = (*sample)->truth();
  ASSERT_TRUE(t.contains("pause_monitor"));
  EXPECT_EQ((*sample)->statusField("Threads"), "4");
  auto report = [&]() -> json {
    unlink(report_path.c_str());
    EXPECT_EQ(kill(pid, SIGUSR2), 0);
    EXPECT_TRUE(waitFor([&] { return access(report_path.c_str(), F_OK) == 0; }));
    return json::parse(readFile(report_path), nullptr, false);
  };

  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  json first = report(); // resets the monitor
  ASSERT_TRUE(first.is_object()) << readFile(report_path);
  EXPECT_GT(first["samples"].get<uint64_t>(), 0u);
  EXPECT_GE(first["max_gap_ms"].get<double>(), 0.9);

  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  json second = report();
  ASSERT_TRUE(second.is_object());
  EXPECT_GE(second["max_gap_ms"].get<double>(), 250.0);
  EXPECT_LT(second["max_gap_ms"].get<double>(), 5000.0);
}

TEST(SampleTarget, ResidentMemoryHoldsTheFourKindsOfPages) {
  auto sample = SampleProcess::start(SampleVariant::Pie, {"--resident-mb", "3"});
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  const json& resident = (*sample)->truth()["resident"];
  EXPECT_EQ(resident["size_mb"], 3);
  ASSERT_EQ(resident["addr_list"].size(), 1u); // 64 MiB per mmap
  uint64_t address = addressOf(resident["addr_list"][0]);
  std::optional<std::string> bytes = readRemote((*sample)->pid(), address, 3u << 20);
  ASSERT_TRUE(bytes);
  for (size_t page = 0; page < 8; ++page) {
    SCOPED_TRACE(page);
    std::string_view content(bytes->data() + page * 4096, 4096);
    switch (page % 4) {
    case 0:
      EXPECT_EQ(content.find_first_not_of('\0'), std::string_view::npos);
      break;
    case 1:
      EXPECT_LT(std::count(content.begin(), content.end(), '\0'), 100);
      break;
    case 2:
      EXPECT_EQ(std::count_if(content.begin(), content.end(),
                              [](char c) { return c != '\n' && (c < 0x20 || c > 0x7e); }),
                0);
      break;
    default:
      for (size_t i = 0; i < 4096; i += 8) {
        uint64_t word = 0;
        std::memcpy(&word, content.data() + i, 8);
        EXPECT_TRUE(word >= 0x550000000000ull && word < 0x800000000000ull) << std::hex << word;
      }
    }
  }
  std::vector<Mapping> maps = readMappings((*sample)->pid());
  const Mapping* mapping = findMapping(maps, address);
  ASSERT_NE(mapping, nullptr);
  EXPECT_GE(std::strtoull(mapping->field("Rss").c_str(), nullptr, 10), 3u * 1024) << "not resident";
}

TEST(SampleTarget, BadOptionIsAOneLineError) {
  CommandResult result =
      runCommand({samplePath(SampleVariant::Pie), "--resident-mb", "lots"}, kToolTimeoutSeconds);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err.rfind("sample_target: --resident-mb expects a number", 0), 0u) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
}

TEST(SampleProcessSupport, AddressOfParsesHexAndNumbers) {
  EXPECT_EQ(addressOf(json("0x7fff0000")), 0x7fff0000u);
  EXPECT_EQ(addressOf(json(4096)), 4096u);
  EXPECT_EQ(addressOf(json("7fff")), 0u);
  EXPECT_EQ(addressOf(json("0xzz")), 0u);
  EXPECT_EQ(addressOf(json(nullptr)), 0u);
}

TEST(RunCommandSupport, CapturesOutputAndExitCode) {
  CommandResult result = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, 10);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_FALSE(result.timed_out);

  CommandResult killed = runCommand({"sh", "-c", "kill -9 $$"}, 10);
  EXPECT_EQ(killed.exit_code, 128 + 9);

  CommandResult missing = runCommand({"/nonexistent/procsnap-no-such-tool"}, 10);
  EXPECT_EQ(missing.exit_code, 127);
}

TEST(RunCommandSupport, TimeoutKillsTheWholeGroup) {
  const auto started = std::chrono::steady_clock::now();
  // The background sleep keeps the pipes open: only a group kill ends this.
  CommandResult result = runCommand({"sh", "-c", "sleep 30 & sleep 30"}, 1);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(TempDirSupport, IsRemovedWithItsContents) {
  std::string path;
  {
    auto dir = TempDir::create("procsnap-tempdir-test");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    path = dir->path();
    struct stat info {};
    ASSERT_EQ(stat(path.c_str(), &info), 0);
    EXPECT_TRUE(S_ISDIR(info.st_mode));
    EXPECT_EQ(info.st_mode & 0777, 0700u);
    ASSERT_EQ(mkdir(dir->file("sub").c_str(), 0700), 0);
    std::ofstream(dir->file("sub/file")) << "content";
    TempDir moved = std::move(dir.value());
    EXPECT_EQ(moved.path(), path);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0) << path << " still exists";
}

} // namespace
} // namespace procsnap::test
