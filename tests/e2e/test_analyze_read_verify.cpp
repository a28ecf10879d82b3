// procsnap-analyze read (hex view with labels) and verify (checksums) on a real capture.
#include "tests/e2e/analyze_commands_support.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace procsnap::test {
namespace {

class AnalyzeReadVerify : public SharedCaptureTest<AnalyzeReadVerify> {
protected:
};

// The little-endian hex of a 64-bit value: "87d6120000000000" for 1234567.
std::string littleEndianHex(uint64_t value) {
  std::string text;
  for (int i = 0; i < 8; ++i, value >>= 8) {
    char byte[3];
    std::snprintf(byte, sizeof byte, "%02x", static_cast<unsigned>(value & 0xff));
    text += byte;
  }
  return text;
}

TEST_F(AnalyzeReadVerify, ReadShowsTheDataCounterWithItsLabel) {
  const CapturedSample& c = *captured_;
  uint64_t value = c.truth()["data_counter"]["value"];
  std::string expected_hex = littleEndianHex(value);

  CommandResult json = runAnalyze({"read", c.archive(), "g_data_counter", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json document = parseJson(json.out);
  EXPECT_EQ(addressOf(document["start"]), c.address("data_counter"));
  EXPECT_EQ(document["size"], 8); // the symbol's size
  ASSERT_EQ(document["rows"].size(), 1u);
  const nlohmann::json& row = document["rows"][0];
  EXPECT_EQ(row["hex"], expected_hex);
  EXPECT_EQ(row["size"], 8);
  EXPECT_NE(row["label"].get<std::string>().find("<g_data_counter>"), std::string::npos);
  EXPECT_NE(row["label"].get<std::string>().find("[.data]"), std::string::npos);

  CommandResult text = runAnalyze({"read", c.archive(), "g_data_counter"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::string grouped = expected_hex.substr(0, 4) + " " + expected_hex.substr(4, 4) + " " +
                        expected_hex.substr(8, 4) + " " + expected_hex.substr(12, 4);
  EXPECT_NE(text.out.find(hex(c.address("data_counter")).substr(2)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(grouped), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("[.data] <g_data_counter>"), std::string::npos) << text.out;
}

TEST_F(AnalyzeReadVerify, ReadOfALoneAddressShows256BytesAndTheMarker) {
  const CapturedSample& c = *captured_;
  CommandResult json = runAnalyze({"read", c.archive(), hex(c.address("heap_small")), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json document = parseJson(json.out);
  uint64_t total = 0;
  std::string ascii;
  for (const nlohmann::json& row : document["rows"]) {
    total += row["size"].get<uint64_t>();
    if (row.contains("ascii"))
      ascii += row["ascii"].get<std::string>();
  }
  EXPECT_EQ(total, 256u);
  EXPECT_EQ(ascii.rfind("procsnap-heap-marker-small", 0), 0u) << ascii;

  CommandResult text = runAnalyze({"read", c.archive(), hex(c.address("heap_small"))});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 16) << text.out;
  EXPECT_NE(text.out.find("procsnap-heap-ma"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("[heap]"), std::string::npos) << text.out;
}

TEST_F(AnalyzeReadVerify, ReadCollapsesBytesThatAreNotStored) {
  const CapturedSample& c = *captured_;
  uint64_t dontdump = c.address("dontdump");
  CommandResult text = runAnalyze({"read", c.archive(), hex(dontdump) + "+64k"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 1) << text.out;
  EXPECT_NE(text.out.find("65536 bytes not stored (excluded-dontdump)"), std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find("procsnap-secret"), std::string::npos);

  CommandResult json = runAnalyze({"read", c.archive(), hex(dontdump) + "+64k", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json rows = parseJson(json.out)["rows"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["not_stored"], "excluded-dontdump");
  EXPECT_EQ(rows[0]["size"], 65536);
}

TEST_F(AnalyzeReadVerify, ReadRejectsBadInput) {
  const CapturedSample& c = *captured_;
  const std::vector<std::vector<std::string>> bad = {
      {"read", c.archive(), "g_data_counter", "--length", "0"},
      {"read", c.archive(), "g_data_counter", "--length", "lots"},
      {"read", c.archive(), "no_such_symbol_anywhere"},
      {"read", c.archive(), "0x10"},
      {"read", c.archive(), "0x20-0x10"},
  };
  for (const auto& args : bad) {
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, 2) << args[2];
    expectOneErrorLine(result.err);
  }
}

TEST_F(AnalyzeReadVerify, VerifyPassesOnAFreshArchiveAndFailsAfterOneFlippedByte) {
  const CapturedSample& c = *captured_;
  CommandResult intact = runAnalyze({"verify", c.archive(), "--json"});
  EXPECT_EQ(intact.exit_code, 0) << intact.err;
  nlohmann::json report = parseJson(intact.out)["verify"];
  EXPECT_EQ(report["result"], "intact");
  EXPECT_EQ(report["blocks_damaged"], 0);
  EXPECT_GT(report["chunks_checked"].get<uint64_t>(), 0u);

  std::string damaged = c.file("damaged.psnap");
  std::filesystem::copy_file(c.archive(), damaged);
  std::string bytes = readWholeFile(damaged);
  ASSERT_GT(bytes.size(), 1000u);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
  {
    std::ofstream out(damaged, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  CommandResult broken = runAnalyze({"verify", damaged, "--json"});
  EXPECT_EQ(broken.exit_code, 1) << broken.err;
  nlohmann::json broken_report = parseJson(broken.out)["verify"];
  EXPECT_EQ(broken_report["result"], "damaged");
  EXPECT_GE(broken_report["blocks_damaged"].get<uint64_t>(), 1u);
  ASSERT_FALSE(broken_report["damaged"].empty());
  uint64_t offset = addressOf(broken_report["damaged"][0]["offset"]);
  uint64_t size = broken_report["damaged"][0]["size"];
  EXPECT_LE(offset, bytes.size() / 2); // the damaged block holds the flipped byte
  EXPECT_GT(offset + size, bytes.size() / 2);

  CommandResult text = runAnalyze({"verify", damaged});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("result: damaged"), std::string::npos) << text.out;
}

TEST_F(AnalyzeReadVerify, VerifyErrorsOnWhatIsNotAnArchive) {
  const CapturedSample& c = *captured_;
  std::string text_file = c.file("not-an-archive.txt");
  {
    std::ofstream out(text_file);
    out << "hello, this is not an archive\n";
  }
  for (const std::string& path :
       {c.file("missing.psnap"), text_file, std::string(PROCSNAP_SAMPLE_PIE)}) {
    CommandResult result = runAnalyze({"verify", path});
    EXPECT_EQ(result.exit_code, 2) << path;
    expectOneErrorLine(result.err);
  }
}

} // namespace
} // namespace procsnap::test
