// procsnap-analyze strings: finds the sample's markers at their true addresses, and on each
// region finds exactly what GNU strings finds on that region's dump.
#include "tests/e2e/analyze_commands_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace procsnap::test {
namespace {

using Hits = std::vector<std::pair<uint64_t, std::string>>;

class AnalyzeStrings : public SharedCaptureTest<AnalyzeStrings> {
protected:
  // procsnap strings --json with extra arguments; the hits as JSON objects.
  static nlohmann::json stringsJson(std::vector<std::string> extra) {
    std::vector<std::string> args = {"strings", captured_->archive(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    nlohmann::json document = parseJson(result.out);
    return document.is_object() ? document["strings"] : nlohmann::json::array();
  }

  // procsnap strings in text with extra arguments, parsed back into (address, string), for
  // regions outside modules: "0xADDR  KIND(12)  LOCATION(28 or more)  STRING", where
  // LOCATION has no spaces.
  static Hits textHits(std::vector<std::string> extra) {
    constexpr size_t kKindWidth = 12, kLocationWidth = 28, kGap = 2;
    std::vector<std::string> args = {"strings", captured_->archive()};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    Hits hits;
    std::istringstream lines(result.out);
    std::string line;
    while (std::getline(lines, line)) {
      size_t address_end = line.find(' ');
      size_t location = address_end + kGap + kKindWidth + kGap;
      size_t location_end = line.find(' ', location);
      if (address_end == std::string::npos || location_end == std::string::npos) {
        ADD_FAILURE() << "unexpected line: " << line;
        continue;
      }
      size_t text = location + std::max(kLocationWidth, location_end - location) + kGap;
      hits.emplace_back(std::stoull(line.substr(0, address_end), nullptr, 16),
                        line.substr(std::min(text, line.size())));
    }
    return hits;
  }
};

TEST_F(AnalyzeStrings, FindsHeapMarkersAtTheirTrueAddresses) {
  const CapturedSample& c = *captured_;
  // Every kind but the mmap-served heap block (170 000 lines of text), checked below.
  nlohmann::json hits = stringsJson({"-n", "10", "--kind", "heap,data,rodata,thread-stack"});
  ASSERT_TRUE(hits.is_array());
  std::map<std::string, std::set<uint64_t>> where;
  std::map<uint64_t, nlohmann::json> by_address;
  for (const nlohmann::json& hit : hits) {
    uint64_t address = addressOf(hit["address"]);
    where[hit["string"]].insert(address);
    by_address[address] = hit;
  }
  // heap_large starts with the marker and a newline; heap_small holds exactly the marker.
  Hits large = textHits({"-n", "10", "--region", hex(c.address("heap_large"))});
  EXPECT_TRUE(std::find(large.begin(), large.end(),
                        std::make_pair(c.address("heap_large"),
                                       std::string("procsnap-heap-marker-large"))) != large.end())
      << "heap_large at " << hex(c.address("heap_large"));
  EXPECT_GT(large.size(), 100000u); // one hit per line of its text
  EXPECT_TRUE(where["procsnap-heap-marker-small"].count(c.address("heap_small")));
  EXPECT_EQ(by_address[c.address("heap_small")]["kind"], "heap");

  // A global in .data, named by its module, section and symbol.
  uint64_t message = c.address("data_message");
  ASSERT_TRUE(by_address.count(message));
  const nlohmann::json& hit = by_address[message];
  EXPECT_EQ(hit["string"], c.truth()["data_message"]["value"]);
  EXPECT_EQ(hit["kind"], "data");
  EXPECT_EQ(hit["module"], "sample_target");
  EXPECT_EQ(hit["section"], ".data");
  EXPECT_EQ(hit["symbol"], "g_data_message");
  EXPECT_EQ(hit["symbol_offset"], "0x0");

  // A worker's stack marker, and nothing from the MADV_DONTDUMP region.
  for (const nlohmann::json& thread : c.truth()["threads"])
    EXPECT_TRUE(where[thread["stack_marker"]].count(addressOf(thread["stack_marker_addr"])));
  // (The secret itself is also a constant in .rodata, so look at addresses.)
  uint64_t dontdump = c.address("dontdump");
  uint64_t dontdump_size = c.truth()["dontdump"]["size"];
  auto inside = by_address.lower_bound(dontdump);
  EXPECT_TRUE(inside == by_address.end() || inside->first >= dontdump + dontdump_size)
      << "a string from the MADV_DONTDUMP region: " << inside->second.dump();
}

// On the bytes of one region, dumped with `dump` (itself checked against gdb), GNU strings
// -a finds exactly the (offset, string) pairs procsnap finds in that region.
TEST_F(AnalyzeStrings, MatchesGnuStringsOnEachRegionDump) {
  const CapturedSample& c = *captured_;
  struct Case {
    const char* name;
    uint64_t address;
    int min_length;
    const char* encoding;
    bool text = false; // compare the text output (outside modules only)
  };
  const Case cases[] = {
      {"heap", c.address("heap_small"), 10, "s"},
      {"heap-n4", c.address("heap_small"), 4, "s", true},
      {"data", c.address("data_counter"), 4, "s"},
      {"heap_large", c.address("heap_large"), 10, "s", true},
      {"stack1", addressOf(c.truth()["threads"][0]["stack_marker_addr"]), 6, "s"},
      {"rodata", c.address("rodata_string"), 4, "s"},
      {"heap-utf16", c.address("heap_small"), 3, "l"},
      {"rodata-utf16", c.address("rodata_string"), 2, "l"},
  };
  size_t compared = 0;
  for (const Case& each : cases) {
    std::optional<MapsLine> region = mappingOf(c.pid(), each.address);
    ASSERT_TRUE(region) << each.name;
    std::string path = c.file(std::string(each.name) + ".bin");
    CommandResult dump = runAnalyze({"dump", c.archive(), hex(region->start), "-o", path});
    ASSERT_EQ(dump.exit_code, 0) << dump.err;
    Hits expected = gnuStrings(path, each.min_length, each.encoding);

    Hits ours;
    std::vector<std::string> args = {"-n",         std::to_string(each.min_length),
                                     "--encoding", each.encoding,
                                     "--region",   hex(each.address)};
    if (each.text) { // big: JSON would take long to parse in a debug build
      for (auto& [address, string] : textHits(args))
        ours.emplace_back(address - region->start, std::move(string));
    } else {
      for (const nlohmann::json& hit : stringsJson(args)) {
        EXPECT_EQ(addressOf(hit["region_start"]), region->start);
        ours.emplace_back(addressOf(hit["address"]) - region->start, hit["string"]);
      }
    }
    EXPECT_EQ(ours.size(), expected.size()) << each.name;
    EXPECT_TRUE(ours == expected) << each.name << ": procsnap and GNU strings differ";
    compared += expected.size();
  }
  EXPECT_GT(compared, 1000u); // the regions held plenty of strings
}

TEST_F(AnalyzeStrings, TextAndJsonAgree) {
  const CapturedSample& c = *captured_;
  // Every kind but anonymous memory (the sample's 6 MiB of heap text would make this slow).
  const std::string kinds = "heap,data,rodata,text,bss,stack,thread-stack,vdso";
  nlohmann::json hits = stringsJson({"-n", "8", "--kind", kinds});
  CommandResult text = runAnalyze({"strings", c.archive(), "-n", "8", "--kind", kinds});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::istringstream lines(text.out);
  std::string line;
  size_t index = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(index, hits.size()) << "more text lines than JSON hits: " << line;
    const nlohmann::json& hit = hits[index++];
    std::string address = hit["address"];
    std::string string = hit["string"];
    std::string kind = hit["kind"];
    EXPECT_EQ(line.rfind(address + "  " + kind, 0), 0u) << line;
    EXPECT_TRUE(line.size() >= string.size() &&
                line.compare(line.size() - string.size(), string.size(), string) == 0)
        << line;
    if (!hit["symbol"].is_null()) {
      EXPECT_NE(line.find("<" + hit["symbol"].get<std::string>()), std::string::npos) << line;
    }
  }
  EXPECT_EQ(index, hits.size());
  EXPECT_GT(hits.size(), 1000u);
}

TEST_F(AnalyzeStrings, KindFilter) {
  nlohmann::json hits = stringsJson({"-n", "10", "--kind", "heap"});
  ASSERT_FALSE(hits.empty());
  bool marker = false;
  for (const nlohmann::json& hit : hits) {
    EXPECT_EQ(hit["kind"], "heap");
    marker = marker || hit["string"] == "procsnap-heap-marker-small";
  }
  EXPECT_TRUE(marker);
}

TEST_F(AnalyzeStrings, BadOptionsAreOneLineErrors) {
  const CapturedSample& c = *captured_;
  const std::vector<std::vector<std::string>> bad = {
      {"strings", c.archive(), "-n", "0"},
      {"strings", c.archive(), "--encoding", "x"},
      {"strings", c.archive(), "--kind", "nonsense"},
      {"strings", c.archive(), "--region", "0x10"},
      {"strings", c.archive(), "--region", "zz"},
      {"strings", c.file("missing.psnap")},
  };
  for (const auto& args : bad) {
    CommandResult result = runAnalyze(args);
    EXPECT_EQ(result.exit_code, 2) << args.back();
    expectOneErrorLine(result.err);
  }
}

} // namespace
} // namespace procsnap::test
