// procsnap-analyze dump against gdb's `dump memory` on the same, unchanged process.
#include "tests/e2e/analyze_commands_support.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace procsnap::test {
namespace {

class AnalyzeDump : public SharedCaptureTest<AnalyzeDump> {
protected:
};

// The heap, .data, the .bss mapping and the mmap-served large heap block: procsnap's dump of
// each region equals gdb's, byte for byte, not-present pages included (gdb reads them as
// zeros, procsnap writes zeros).
TEST_F(AnalyzeDump, RegionsAreByteIdenticalToGdbDumpMemory) {
  const CapturedSample& c = *captured_;
  struct Case {
    const char* name;
    uint64_t address;
  };
  const Case cases[] = {{"heap", c.address("heap_small")},
                        {"data", c.address("data_counter")},
                        {"bss", c.address("bss_array") + (1u << 21)},
                        {"heap_large", c.address("heap_large")}};
  std::vector<std::pair<std::string, MapsLine>> gdb_dumps;
  for (const Case& each : cases) {
    std::optional<MapsLine> mapping = mappingOf(c.pid(), each.address);
    ASSERT_TRUE(mapping) << each.name;
    std::string ours = c.file(std::string(each.name) + ".procsnap");
    CommandResult dump = runAnalyze({"dump", c.archive(), hex(mapping->start), "-o", ours});
    ASSERT_EQ(dump.exit_code, 0) << each.name << ": " << dump.err;
    EXPECT_NE(dump.out.find("bytes_stored:"), std::string::npos) << dump.out;
    gdb_dumps.emplace_back(c.file(std::string(each.name) + ".gdb"), *mapping);
  }
  ASSERT_TRUE(gdbDumpMemory(c.pid(), gdb_dumps));
  for (const Case& each : cases) {
    std::string ours = readWholeFile(c.file(std::string(each.name) + ".procsnap"));
    std::string theirs = readWholeFile(c.file(std::string(each.name) + ".gdb"));
    ASSERT_FALSE(theirs.empty()) << each.name;
    EXPECT_EQ(ours.size(), theirs.size()) << each.name;
    EXPECT_TRUE(ours == theirs) << each.name << " differs from gdb's dump";
  }
  // The heap really held the marker (the comparison is not of two empty files).
  std::string heap = readWholeFile(c.file("heap.procsnap"));
  EXPECT_NE(heap.find("procsnap-heap-marker-small"), std::string::npos);
}

TEST_F(AnalyzeDump, FileIsPrivateSparseAndNotOverwrittenWithoutForce) {
  const CapturedSample& c = *captured_;
  std::optional<MapsLine> heap = mappingOf(c.pid(), c.address("heap_small"));
  ASSERT_TRUE(heap);
  std::string path = c.file("heap-sparse.bin");
  CommandResult dump = runAnalyze({"dump", c.archive(), hex(heap->start), "-o", path, "--json"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  nlohmann::json report = parseJson(dump.out)["dump"];
  uint64_t size = report["size"];
  uint64_t stored = report["bytes_stored"];
  EXPECT_EQ(size, heap->end - heap->start);
  EXPECT_EQ(stored + report["bytes_zero_filled"].get<uint64_t>(), size);
  uint64_t reasons = 0;
  for (const auto& [reason, bytes] : report["not_stored"].items())
    reasons += bytes.get<uint64_t>();
  EXPECT_EQ(reasons, size - stored) << report.dump(); // every zero-filled byte has a reason

  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  // Holes where nothing was stored: allocated blocks do not exceed the stored bytes (plus a
  // page of filesystem slack).
  if (stored < size) {
    EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, stored + 4096);
  }

  CommandResult again = runAnalyze({"dump", c.archive(), hex(heap->start), "-o", path});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("procsnap-analyze: error: output file exists: " + path +
                           " (use --force to overwrite)"),
            std::string::npos)
      << again.err;
  chmod(path.c_str(), 0644);
  CommandResult forced = runAnalyze({"dump", c.archive(), hex(heap->start), "-o", path, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AnalyzeDump, ReportsWhyBytesAreZeros) {
  const CapturedSample& c = *captured_;
  uint64_t dontdump = c.address("dontdump");
  std::string path = c.file("dontdump.bin");
  CommandResult dump =
      runAnalyze({"dump", c.archive(), hex(dontdump) + "+64k", "-o", path, "--json"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  nlohmann::json report = parseJson(dump.out)["dump"];
  EXPECT_EQ(report["bytes_stored"], 0);
  EXPECT_EQ(report["not_stored"]["excluded-dontdump"], 65536) << report.dump();
  std::string bytes = readWholeFile(path);
  EXPECT_EQ(bytes, std::string(65536, '\0'));
}

TEST_F(AnalyzeDump, SymbolsAndSections) {
  const CapturedSample& c = *captured_;
  std::string path = c.file("message.bin");
  CommandResult dump = runAnalyze({"dump", c.archive(), "g_data_message", "-o", path});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  std::string expected = c.truth()["data_message"]["value"];
  expected.resize(64, '\0');
  EXPECT_EQ(readWholeFile(path), expected);

  std::string section = c.file("data-section.bin");
  CommandResult data = runAnalyze({"dump", c.archive(), "sample_target:.data", "-o", section});
  ASSERT_EQ(data.exit_code, 0) << data.err;
  EXPECT_NE(readWholeFile(section).find(c.truth()["data_message"]["value"].get<std::string>()),
            std::string::npos);
}

TEST_F(AnalyzeDump, BadInputIsOneLineErrorAndLeavesNoFile) {
  const CapturedSample& c = *captured_;
  uint64_t heap_small = c.address("heap_small");
  std::string path = c.file("bad.bin");
  const std::vector<std::vector<std::string>> bad = {
      {"dump", c.archive(), "0x2000-0x1000", "-o", path},
      {"dump", c.archive(), "0x", "-o", path},
      {"dump", c.archive(), hex(heap_small), "-o", path}, // inside the heap, not its start
      {"dump", c.archive(), "0x10", "-o", path},          // unmapped
      {"dump", c.archive(), "no_such_symbol_anywhere", "-o", path},
      {"dump", c.archive(), "nosuchmodule.so:.data", "-o", path},
      {"dump", c.file("missing.psnap"), "0x1000+16", "-o", path},
      {"dump", c.archive(), "0x1000+16", "-o", c.file("no/such/dir/x.bin")},
  };
  for (const auto& args : bad) {
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, 2) << args[2];
    expectOneErrorLine(result.err);
    struct stat st {};
    EXPECT_NE(stat(path.c_str(), &st), 0) << "a file was left for " << args[2];
  }
}

} // namespace
} // namespace procsnap::test
