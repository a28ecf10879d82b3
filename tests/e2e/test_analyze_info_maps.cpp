// info and maps on a captured sample, checked against /proc/PID/maps (the sample is idle
// after the capture, so its maps are what they were), readelf and nm.
#include "tests/e2e/analyze_core_support.h"

#include <algorithm>
#include <map>
#include <set>

namespace procsnap::test {
namespace {

using nlohmann::json;

class AnalyzeInfoMapsTest : public SharedCaptureTest<AnalyzeInfoMapsTest> {
protected:
};

struct ProcMapsLine {
  uint64_t start = 0, end = 0, offset = 0, inode = 0;
  std::string perms, device, path;
};

std::vector<ProcMapsLine> procMaps(pid_t pid) {
  std::vector<ProcMapsLine> lines;
  std::istringstream text(readWholeFile("/proc/" + std::to_string(pid) + "/maps"));
  std::string line;
  while (std::getline(text, line)) {
    ProcMapsLine entry;
    unsigned long long start, end, offset, inode;
    char perms[8], device[16];
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu%n", &start, &end, perms, &offset,
                    device, &inode, &consumed) < 6)
      continue;
    entry.start = start;
    entry.end = end;
    entry.offset = offset;
    entry.inode = inode;
    entry.perms = perms;
    entry.device = device;
    std::string rest = line.substr(static_cast<size_t>(consumed));
    size_t first = rest.find_first_not_of(' ');
    entry.path = first == std::string::npos ? "" : rest.substr(first);
    lines.push_back(entry);
  }
  return lines;
}

TEST_F(AnalyzeInfoMapsTest, MapsMatchesProcMapsLineByLine) {
  json source = analyzeJson({"maps", captured_->archive()});
  ASSERT_TRUE(source.is_object());
  std::vector<ProcMapsLine> live = procMaps(captured_->pid());
  const json& regions = source["regions"];
  ASSERT_EQ(regions.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    const json& region = regions[i];
    SCOPED_TRACE("region " + std::to_string(i) + ": " + region.dump());
    EXPECT_EQ(hexValue(region["start"]), live[i].start);
    EXPECT_EQ(hexValue(region["end"]), live[i].end);
    EXPECT_EQ(region["perms"], live[i].perms);
    EXPECT_EQ(hexValue(region["offset"]), live[i].offset);
    EXPECT_EQ(region["device"], live[i].device);
    EXPECT_EQ(region["inode"], live[i].inode);
    EXPECT_EQ(region["path"], live[i].path);
    // What the seed article computes with awk: (end - start) / 1024 and / 4096.
    EXPECT_EQ(region["size_kib"], (live[i].end - live[i].start) / 1024);
    EXPECT_EQ(region["pages"], (live[i].end - live[i].start) / 4096);
    EXPECT_LE(region["stored_bytes"].get<uint64_t>(), live[i].end - live[i].start);
    if (live[i].perms == "---p") {
      EXPECT_EQ(region["stored_bytes"], 0u);
    }
  }
}

TEST_F(AnalyzeInfoMapsTest, KindsStoredBytesAndTotalsAddUp) {
  json source = analyzeJson({"maps", captured_->archive()});
  ASSERT_TRUE(source.is_object());
  std::map<std::string, uint64_t> size_by_kind, stored_by_kind, count_by_kind;
  std::map<uint64_t, json> by_start;
  for (const json& region : source["regions"]) {
    size_by_kind[region["kind"]] += region["size_kib"].get<uint64_t>();
    stored_by_kind[region["kind"]] += region["stored_bytes"].get<uint64_t>();
    count_by_kind[region["kind"]] += 1;
  }
  uint64_t total_regions = 0;
  for (const json& row : source["totals"]) {
    std::string kind = row["kind"];
    if (kind == "total") {
      EXPECT_EQ(row["regions"], source["regions"].size());
      continue;
    }
    EXPECT_EQ(row["size_kib"], size_by_kind[kind]) << kind;
    EXPECT_EQ(row["stored_bytes"], stored_by_kind[kind]) << kind;
    EXPECT_EQ(row["regions"], count_by_kind[kind]) << kind;
    total_regions += row["regions"].get<uint64_t>();
  }
  EXPECT_EQ(total_regions, source["regions"].size());

  // The region holding each known global is of the expected kind and stores its page.
  auto regionOf = [&](uint64_t address) -> json {
    for (const json& region : source["regions"])
      if (address >= hexValue(region["start"]) && address < hexValue(region["end"]))
        return region;
    return nullptr;
  };
  json data = regionOf(captured_->address("data_counter"));
  ASSERT_TRUE(data.is_object());
  EXPECT_EQ(data["kind"], "data");
  EXPECT_GE(data["stored_bytes"].get<uint64_t>(), 4096u);
  json heap = regionOf(captured_->address("heap_small"));
  ASSERT_TRUE(heap.is_object());
  EXPECT_EQ(heap["kind"], "heap");
  EXPECT_EQ(heap["path"], "[heap]");
  json bss_end = regionOf(captured_->address("bss_array") + (4u << 20) - 1);
  ASSERT_TRUE(bss_end.is_object());
  EXPECT_EQ(bss_end["kind"], "bss");
  json dontdump = regionOf(captured_->address("dontdump"));
  ASSERT_TRUE(dontdump.is_object());
  EXPECT_EQ(dontdump["stored_bytes"], 0u); // MADV_DONTDUMP: skipped by default
}

TEST_F(AnalyzeInfoMapsTest, FiltersSelectRegions) {
  const uint64_t counter = captured_->address("data_counter");
  json by_address = analyzeJson({"maps", "--address", hex(counter), captured_->archive()});
  ASSERT_EQ(by_address["regions"].size(), 1u);
  auto live = mappingOf(captured_->pid(), counter);
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(hexValue(by_address["regions"][0]["start"]), live->start);

  json heap = analyzeJson({"maps", "--kind", "heap,stack", captured_->archive()});
  ASSERT_EQ(heap["regions"].size(), 2u);
  std::set<std::string> kinds;
  for (const json& region : heap["regions"])
    kinds.insert(region["kind"]);
  EXPECT_EQ(kinds, (std::set<std::string>{"heap", "stack"}));

  // A module's view includes the anonymous rest of its .bss right after its data mapping.
  json libc = analyzeJson({"maps", "--path", "libc.so", captured_->archive()});
  ASSERT_GE(libc["regions"].size(), 3u);
  size_t bss_tails = 0;
  for (size_t i = 0; i < libc["regions"].size(); ++i) {
    const json& region = libc["regions"][i];
    if (region["kind"] == "bss" && region["path"] == "") {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(libc["regions"][i - 1]["end"], region["start"]);
      EXPECT_NE(libc["regions"][i - 1]["path"].get<std::string>().find("libc.so"),
                std::string::npos);
      ++bss_tails;
      continue;
    }
    EXPECT_NE(region["path"].get<std::string>().find("libc.so"), std::string::npos);
  }
  EXPECT_EQ(bss_tails, 1u);

  CommandResult bad_kind = runAnalyze({"maps", "--kind", "nonsense", captured_->archive()});
  EXPECT_EQ(bad_kind.exit_code, 2);
  expectOneErrorLine(bad_kind.err);
  CommandResult bad_address = runAnalyze({"maps", "--address", "0xzz", captured_->archive()});
  EXPECT_EQ(bad_address.exit_code, 2);
  expectOneErrorLine(bad_address.err);
}

TEST_F(AnalyzeInfoMapsTest, TextAndJsonAgree) {
  json source = analyzeJson({"maps", captured_->archive()});
  std::string text = analyzeText({"maps", captured_->archive()});
  // pmap's layout: a header line "PID:   CMDLINE   (sizes in KiB)", then the table.
  EXPECT_EQ(text.rfind(std::to_string(source["process"]["pid"].get<int>()) + ":   ", 0), 0u)
      << text.substr(0, 200);
  EXPECT_NE(text.substr(0, text.find('\n')).find("(sizes in KiB)"), std::string::npos);
  auto rows = textTable(text, "ADDRESS");
  std::vector<std::string> titles;
  {
    std::istringstream header(text.substr(text.find("ADDRESS")));
    std::string line, title;
    std::getline(header, line);
    std::istringstream fields(line);
    while (fields >> title)
      titles.push_back(title);
  }
  auto column = [&](const std::string& title) {
    return static_cast<size_t>(std::find(titles.begin(), titles.end(), title) - titles.begin());
  };
  const size_t size_at = column("SIZE"), stored_at = column("STORED"), kind_at = column("KIND");
  ASSERT_LT(kind_at, titles.size());
  ASSERT_EQ(rows.size(), source["regions"].size());
  const uint64_t page_size = 4096;
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& region = source["regions"][i];
    ASSERT_GT(rows[i].size(), kind_at);
    EXPECT_EQ(rows[i][0], region["start"]);
    EXPECT_EQ(rows[i][1], region["perms"]);
    // END is START + SIZE, and the pages follow from it.
    uint64_t size_kib = std::stoull(rows[i][size_at]);
    EXPECT_EQ(hexValue(region["start"]) + size_kib * 1024, hexValue(region["end"]));
    EXPECT_EQ(std::to_string(size_kib), std::to_string(region["size_kib"].get<uint64_t>()));
    EXPECT_EQ(size_kib * 1024 / page_size, region["pages"].get<uint64_t>());
    EXPECT_EQ(rows[i][stored_at],
              std::to_string((region["stored_bytes"].get<uint64_t>() + 1023) / 1024));
    EXPECT_EQ(rows[i][kind_at], region["kind"]);
  }
  json info = analyzeJson({"info", captured_->archive()});
  std::string info_text = analyzeText({"info", captured_->archive()});
  EXPECT_NE(info_text.find("pid: " + std::to_string(info["process"]["pid"].get<int>())),
            std::string::npos);
  // Text drops symbol versions ("clock_nanosleep@@GLIBC_2.17+0x65" reads
  // "clock_nanosleep+0x65"); JSON keeps the ELF spelling.
  EXPECT_EQ(info_text.find("@GLIBC"), std::string::npos) << info_text;
  for (const json& thread : info["threads"]) {
    std::string symbol = thread["pc_symbol"];
    size_t at = symbol.find('@');
    if (at != std::string::npos && at > 0) {
      EXPECT_NE(
          info_text.find(symbol.substr(0, at) + symbol.substr(symbol.find_first_of("+ ", at))),
          std::string::npos)
          << symbol;
    }
  }
  auto threads = textTable(info_text, "TID");
  ASSERT_EQ(threads.size(), info["threads"].size());
  for (size_t i = 0; i < threads.size(); ++i)
    EXPECT_EQ(threads[i][0], std::to_string(info["threads"][i]["tid"].get<int>()));
}

TEST_F(AnalyzeInfoMapsTest, InfoDescribesProcessThreadsAndModules) {
  json info = analyzeJson({"info", captured_->archive()});
  ASSERT_TRUE(info.is_object());
  const json& truth = captured_->truth();
  EXPECT_EQ(info["process"]["pid"], captured_->pid());
  EXPECT_EQ(info["process"]["exe"], truth["exe"]);
  EXPECT_EQ(info["process"]["comm"], "sample_target");
  EXPECT_EQ(info["capture"]["partial"], false);
  EXPECT_GT(info["statistics"]["bytes_stored"].get<uint64_t>(), 4u << 20);
  EXPECT_GT(info["statistics"]["compression_ratio"].get<double>(), 1.0);
  EXPECT_GT(info["statistics"]["pause_seconds"].get<double>(), 0.0);

  std::map<int, std::string> threads;
  for (const json& thread : info["threads"])
    threads[thread["tid"].get<int>()] = thread["name"];
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(truth["main_tid"].get<int>()), 1u);
  for (const json& worker : truth["threads"])
    EXPECT_EQ(threads[worker["tid"].get<int>()], worker["name"]);
  for (const json& thread : info["threads"]) {
    // Every thread is stopped in libc (poll, futex wait): the pc is named.
    EXPECT_NE(thread["pc_symbol"].get<std::string>().find("libc.so.6"), std::string::npos)
        << thread.dump();
    EXPECT_TRUE(thread["sp_region"] == "stack" || thread["sp_region"] == "thread-stack")
        << thread.dump();
  }

  const std::string exe = truth["exe"];
  json exe_module;
  for (const json& module : info["modules"])
    if (module["path"] == exe)
      exe_module = module;
  ASSERT_TRUE(exe_module.is_object()) << info["modules"].dump();
  CommandResult readelf = runCommand({"readelf", "-n", exe}, kAnalyzeTimeoutSeconds);
  size_t at = readelf.out.find("Build ID: ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(exe_module["build_id"],
            readelf.out.substr(at + 10, readelf.out.find('\n', at) - at - 10));
  EXPECT_EQ(exe_module["found"], "sketch");
  EXPECT_EQ(hexValue(exe_module["load_bias"]),
            captured_->address("data_counter") - nmAddress(exe, "g_data_counter"));
  EXPECT_EQ(info["contents"]["environment"], false);
}

TEST_F(AnalyzeInfoMapsTest, MissingAndInvalidSourcesAreOneLineErrors) {
  CommandResult missing = runAnalyze({"info", captured_->file("nope.psnap")});
  EXPECT_EQ(missing.exit_code, 2);
  expectOneErrorLine(missing.err);
  EXPECT_NE(missing.err.find("nope.psnap"), std::string::npos);

  std::string text_file = captured_->file("not-an-archive.psnap");
  std::ofstream(text_file) << "hello\n";
  CommandResult invalid = runAnalyze({"maps", "--json", text_file});
  EXPECT_EQ(invalid.exit_code, 2);
  expectOneErrorLine(invalid.err);
  json document = parseJson(invalid.out); // still a JSON document, with the error in it
  ASSERT_TRUE(document.is_object());
  EXPECT_TRUE(document["sources"][0].contains("error"));

  CommandResult no_command = runAnalyze({});
  EXPECT_EQ(no_command.exit_code, 2);

  // Errors: once, on stderr, naming the file once; text output gets nothing.
  CommandResult invalid_text = runAnalyze({"maps", text_file});
  EXPECT_EQ(invalid_text.exit_code, 2);
  EXPECT_EQ(invalid_text.out, "");
  expectOneErrorLine(invalid_text.err);
  EXPECT_NE(invalid_text.err.find("cannot open '" + text_file + "': not a procsnap archive"),
            std::string::npos)
      << invalid_text.err;

  // Missing or unknown arguments: our error line and the command's usage, not LLVM's text.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info"}, {"maps", "--bogus", captured_->archive()}, {"bogus"}}) {
    CommandResult refused = runAnalyze(args);
    EXPECT_EQ(refused.exit_code, 2) << args[0];
    EXPECT_EQ(refused.err.rfind("procsnap-analyze: error: ", 0), 0u) << refused.err;
    EXPECT_NE(refused.err.find("\nusage: procsnap-analyze "), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("See:"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("Try:"), std::string::npos) << refused.err;
  }
}

// Global options before the command, `-` for standard input, schema_version in JSON.
TEST_F(AnalyzeInfoMapsTest, GlobalOptionsFirstAndStandardInput) {
  CommandResult first = runAnalyze({"--json", "info", captured_->archive()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  json document = parseJson(first.out);
  EXPECT_EQ(document["schema_version"], 2);
  EXPECT_EQ(document["sources"][0]["process"]["pid"], captured_->pid());
  EXPECT_TRUE(document["sources"][0]["capture"]["partial_reason"].is_null());
  for (const json& module : document["sources"][0]["modules"])
    EXPECT_TRUE(module["embedded"].is_boolean()) << module.dump();

  // A pipe (spooled) and a redirected file (read in place).
  CommandResult piped = runCommand(
      {"sh", "-c",
       "cat '" + captured_->archive() + "' | " + PROCSNAP_ANALYZE_BIN + " maps --json -"},
      kAnalyzeTimeoutSeconds);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  json from_pipe = parseJson(piped.out);
  json from_file = analyzeJson({"maps", captured_->archive()});
  EXPECT_EQ(from_pipe["sources"][0]["regions"], from_file["regions"]);
  CommandResult redirected = runCommand(
      {"sh", "-c", std::string(PROCSNAP_ANALYZE_BIN) + " info - < '" + captured_->archive() + "'"},
      kAnalyzeTimeoutSeconds);
  EXPECT_EQ(redirected.exit_code, 0) << redirected.err;
  // One source: no "sources:" wrapper in text.
  EXPECT_EQ(redirected.out.find("sources:"), std::string::npos);
  EXPECT_EQ(redirected.out.rfind("process:", 0), 0u) << redirected.out.substr(0, 200);
}

} // namespace
} // namespace procsnap::test
