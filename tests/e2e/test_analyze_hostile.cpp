// Forged archives against the analyzer's commands (issue 13): text from the input reaches the
// terminal escaped, errors stay one line, and export-core refuses a layout no file can hold.
#include "common/archive/metadata_codec.h"
#include "tests/e2e/analyze_commands_support.h"
#include "tests/support/archive_synth.h"
#include "tests/support/raw_archive.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace procsnap::test {
namespace {

// A control sequence (clear screen), a newline and a forged analyzer line, as a hostile
// target could put them in its comm, a file name or a region kind.
const std::string kInjection = "evil\x1b[2J\nprocsnap-analyze: error: forged\xc2\x9b";

bool holdsControls(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7f;
  });
}

void expectNoInjection(const CommandResult& result) {
  EXPECT_FALSE(holdsControls(result.out)) << result.out;
  EXPECT_FALSE(holdsControls(result.err)) << result.err;
  EXPECT_EQ(result.out.find("\nprocsnap-analyze: error: forged"), std::string::npos);
  EXPECT_EQ(result.err.find("\nprocsnap-analyze: error: forged"), std::string::npos) << result.err;
  EXPECT_EQ(result.out.find("\xc2\x9b"), std::string::npos);
}

class AnalyzeHostile : public ::testing::Test {
protected:
  void SetUp() override {
    auto dir = TempDir::create("analyze-hostile");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(dir.value()));
  }
  std::string write(const SnapshotMetadata& metadata, const std::string& name) {
    const std::string path = dir_->file(name);
    auto written = writeSyntheticArchive(path, metadata, syntheticChunks(metadata));
    EXPECT_TRUE(written.ok()) << written.error().message;
    return path;
  }
  std::optional<TempDir> dir_;
};

TEST_F(AnalyzeHostile, InputTextIsEscapedInTextOutputAndWarnings) {
  SnapshotMetadata metadata = syntheticMetadata();
  metadata.process.comm = kInjection;
  metadata.process.exe = "/bin/" + kInjection;
  for (RegionRecord& region : metadata.regions)
    if (region.smaps.map.path == "/synthetic/bin")
      region.smaps.map.path = "/synthetic/" + kInjection;
  for (ModuleRecord& module : metadata.modules)
    module.path = "/synthetic/" + kInjection;
  metadata.warnings.push_back("capture warning " + kInjection);
  const std::string archive = write(metadata, "injected.psnap");
  for (const char* command : {"info", "maps"}) {
    SCOPED_TRACE(command);
    CommandResult text = runAnalyze({command, archive});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    expectNoInjection(text);
    EXPECT_NE(text.out.find("evil\\x1b[2J\\nprocsnap-analyze: error: "
                            "forged\\xc2\\x9b"),
              std::string::npos)
        << text.out;
    // JSON carries the exact bytes, escaped as JSON escapes them.
    CommandResult json = runAnalyze({command, archive, "--json"});
    EXPECT_EQ(json.exit_code, 0) << json.err;
    EXPECT_NE(json.out.find("evil\\u001b[2J\\nprocsnap-analyze"), std::string::npos) << json.out;
  }
}

TEST_F(AnalyzeHostile, AnErrorQuotingInputStaysOneLine) {
  nlohmann::json document = nlohmann::json::parse(encodeMetadata(syntheticMetadata()));
  document["regions"][0]["kind"] = kInjection;
  RawArchive raw;
  raw.addDocument(format::BlockType::Metadata, document.dump());
  const std::string archive = dir_->file("bad-kind.psnap");
  ASSERT_TRUE(writeFileBytes(archive, raw.finish()).ok());
  for (const char* command : {"info", "maps", "verify"}) {
    SCOPED_TRACE(command);
    CommandResult result = runAnalyze({command, archive});
    EXPECT_NE(result.exit_code, 0);
    expectNoInjection(result);
    if (std::string(command) != "verify")
      expectOneErrorLine(result.err);
  }
}

// A region spanning the address space whose pages are all known zero: its PT_LOAD would need
// a file of 2^64 bytes. Before, the offsets wrapped and export-core wrote a core whose
// p_offset + p_filesz lay past its end, with exit 0.
TEST_F(AnalyzeHostile, ExportCoreRefusesSegmentsPastTheLargestFile) {
  SnapshotMetadata metadata = syntheticMetadata();
  RegionRecord region = metadata.regions.front();
  region.smaps.map.start = 0x1000;
  region.smaps.map.end = 0xfffffffffffff000;
  region.smaps.map.path.clear();
  region.smaps.map.inode = 0;
  region.kind = RegionKind::PrivateAnon;
  region.pages = {{0x1000, 0xfffffffffffff000, PageState::Zero}};
  metadata.regions = {region};
  metadata.modules.clear();
  const std::string archive = write(metadata, "spanning.psnap");
  const std::string core = dir_->file("spanning.core");
  CommandResult result = runAnalyze({"export-core", archive, "-o", core});
  EXPECT_NE(result.exit_code, 0) << result.out;
  expectOneErrorLine(result.err);
  EXPECT_NE(result.err.find("largest file size"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(core));
}

} // namespace
} // namespace procsnap::test
