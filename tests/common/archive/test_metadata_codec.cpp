#include "common/archive/metadata_codec.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <random>

namespace procsnap {
namespace {

MapsEntry mapsEntry(uint64_t start, uint64_t end, std::string path) {
  MapsEntry m;
  m.start = start;
  m.end = end;
  m.perms = Permissions{true, false, true, false};
  m.offset = 0x2000;
  m.dev_major = 259;
  m.dev_minor = 3;
  m.inode = 123456789;
  m.path = std::move(path);
  return m;
}

// Every field set to something other than its default, including bytes that are not UTF-8.
SnapshotMetadata fullMetadata() {
  SnapshotMetadata m;
  m.tool_version = "procsnap 9.9.9";
  m.capture_time = "2024-05-06T07:08:09Z";
  m.partial = true;
  m.partial_reason = "target exited";
  m.process.pid = 1234;
  m.process.ppid = 1;
  m.process.comm = "comm\xff\xfe";
  m.process.exe = "/usr/bin/\xe2\x82\xac";
  m.process.cwd = "/home/\x80x";
  m.process.cmdline = {"prog", "", "arg with space", std::string("nul\0inside", 10)};
  m.process.environ = {"A=1", "B=\xc0\xaf"};
  m.process.has_environ = true;
  m.process.status = {{"Name", "prog"}, {"State", "S (sleeping)"}, {"VmRSS", "123 kB"}};
  m.process.auxv = {{33, 0x7fff12345000}, {6, 4096}, {0, 0}};
  m.process.limits = "Limit  Soft  Hard\nMax open files  1024  4096  files\n";
  m.process.coredump_filter = 0x37;
  m.process.uid = {1, 2, 3, 4};
  m.process.gid = {5, 6, 7, 8};
  m.process.groups = {9, 10, 4294967295u};
  m.host = HostInfo{"host", "6.18.0", "x86_64", 16384, "abcd-ef"};

  RegionRecord text;
  text.smaps.map = mapsEntry(0x555555554000, 0x555555556000, "/usr/bin/prog");
  text.smaps.fields = {{"Size", 8}, {"Rss", 8}, {"THPeligible", 0}, {"ProtectionKey", 0}};
  text.smaps.vm_flags = {"rd", "ex", "mr", "mw", "me"};
  text.kind = RegionKind::Text;
  text.pages = {{0x555555554000, 0x555555555000, PageState::Stored},
                {0x555555555000, 0x555555556000, PageState::Zero}};
  m.regions.push_back(text);
  RegionRecord anon;
  anon.smaps.map = mapsEntry(0x7f0000000000, 0x7f0000008000, "");
  anon.smaps.map.perms = Permissions{true, true, false, true};
  anon.smaps.map.deleted = true;
  anon.kind = RegionKind::SharedAnon;
  uint64_t at = 0x7f0000000000;
  for (PageState state :
       {PageState::NotPresent, PageState::ExcludedDontDump, PageState::ExcludedFilter,
        PageState::Unreadable, PageState::Lost, PageState::Redacted}) {
    anon.pages.push_back({at, at + 0x1000, state});
    at += 0x1000;
  }
  anon.note = "some pages could not be read";
  m.regions.push_back(anon);
  RegionRecord vsyscall;
  vsyscall.smaps.map = mapsEntry(0xffffffffff600000, 0xffffffffff601000, "[vsyscall]");
  vsyscall.kind = RegionKind::Vsyscall;
  vsyscall.pages = {{0xffffffffff600000, 0xffffffffff601000, PageState::Unreadable}};
  m.regions.push_back(vsyscall);

  ThreadRecord thread;
  thread.tid = 1235;
  thread.name = "worker";
  thread.state = "t";
  thread.pc = 0x555555554123;
  thread.sp = 0x7ffffffde000;
  thread.register_sets.push_back({1, {std::byte{0}, std::byte{0xff}, std::byte{0x10}}});
  thread.register_sets.push_back({0x202, {}});
  m.threads.push_back(thread);
  m.threads.push_back(ThreadRecord{});

  m.modules.push_back(ModuleRecord{"/usr/bin/prog", "00ff", "00fe", 12345, 0x555555554000,
                                   "map_files", true, true});
  m.stats.pause_seconds = 0.125;
  m.stats.phase_seconds = {{"freeze", 0.001}, {"copy", 0.1}};
  m.stats.bytes_copied = 1ull << 40;
  m.stats.bytes_stored = 5;
  m.stats.bytes_compressed = 6;
  m.stats.bytes_skipped = {{"not-present", 7}, {"zero", 8}};
  m.stats.threads = 2;
  m.stats.chunks = 3;
  m.stats.compressed_while_frozen = true;
  m.warnings = {"first warning", "second \xff warning"};
  return m;
}

void expectSameStats(const CaptureStats& a, const CaptureStats& b) {
  EXPECT_EQ(a.pause_seconds, b.pause_seconds);
  EXPECT_EQ(a.phase_seconds, b.phase_seconds);
  EXPECT_EQ(a.bytes_copied, b.bytes_copied);
  EXPECT_EQ(a.bytes_stored, b.bytes_stored);
  EXPECT_EQ(a.bytes_compressed, b.bytes_compressed);
  EXPECT_EQ(a.bytes_skipped, b.bytes_skipped);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.chunks, b.chunks);
  EXPECT_EQ(a.compressed_while_frozen, b.compressed_while_frozen);
}

void expectSameModule(const ModuleRecord& a, const ModuleRecord& b) {
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.build_id, b.build_id);
  EXPECT_EQ(a.build_id_memory, b.build_id_memory);
  EXPECT_EQ(a.file_size, b.file_size);
  EXPECT_EQ(a.load_address, b.load_address);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.embedded, b.embedded);
  EXPECT_EQ(a.deleted, b.deleted);
}

void expectSameMetadata(const SnapshotMetadata& a, const SnapshotMetadata& b) {
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.capture_time, b.capture_time);
  EXPECT_EQ(a.partial, b.partial);
  EXPECT_EQ(a.partial_reason, b.partial_reason);
  const ProcessInfo& p = a.process;
  const ProcessInfo& q = b.process;
  EXPECT_EQ(p.pid, q.pid);
  EXPECT_EQ(p.ppid, q.ppid);
  EXPECT_EQ(p.comm, q.comm);
  EXPECT_EQ(p.exe, q.exe);
  EXPECT_EQ(p.cwd, q.cwd);
  EXPECT_EQ(p.cmdline, q.cmdline);
  EXPECT_EQ(p.environ, q.environ);
  EXPECT_EQ(p.has_environ, q.has_environ);
  EXPECT_EQ(p.status, q.status);
  ASSERT_EQ(p.auxv.size(), q.auxv.size());
  for (size_t i = 0; i < p.auxv.size(); ++i) {
    EXPECT_EQ(p.auxv[i].type, q.auxv[i].type);
    EXPECT_EQ(p.auxv[i].value, q.auxv[i].value);
  }
  EXPECT_EQ(p.limits, q.limits);
  EXPECT_EQ(p.coredump_filter, q.coredump_filter);
  EXPECT_EQ(p.uid, q.uid);
  EXPECT_EQ(p.gid, q.gid);
  EXPECT_EQ(p.groups, q.groups);
  EXPECT_EQ(a.host.hostname, b.host.hostname);
  EXPECT_EQ(a.host.kernel_release, b.host.kernel_release);
  EXPECT_EQ(a.host.machine, b.host.machine);
  EXPECT_EQ(a.host.page_size, b.host.page_size);
  EXPECT_EQ(a.host.boot_id, b.host.boot_id);
  ASSERT_EQ(a.regions.size(), b.regions.size());
  for (size_t i = 0; i < a.regions.size(); ++i) {
    const RegionRecord& r = a.regions[i];
    const RegionRecord& s = b.regions[i];
    EXPECT_EQ(r.smaps.map, s.smaps.map);
    EXPECT_EQ(r.smaps.fields, s.smaps.fields);
    EXPECT_EQ(r.smaps.vm_flags, s.smaps.vm_flags);
    EXPECT_EQ(r.kind, s.kind);
    ASSERT_EQ(r.pages.size(), s.pages.size());
    for (size_t k = 0; k < r.pages.size(); ++k) {
      EXPECT_EQ(r.pages[k].start, s.pages[k].start);
      EXPECT_EQ(r.pages[k].end, s.pages[k].end);
      EXPECT_EQ(r.pages[k].state, s.pages[k].state);
    }
    EXPECT_EQ(r.note, s.note);
  }
  ASSERT_EQ(a.threads.size(), b.threads.size());
  for (size_t i = 0; i < a.threads.size(); ++i) {
    const ThreadRecord& t = a.threads[i];
    const ThreadRecord& u = b.threads[i];
    EXPECT_EQ(t.tid, u.tid);
    EXPECT_EQ(t.name, u.name);
    EXPECT_EQ(t.state, u.state);
    EXPECT_EQ(t.pc, u.pc);
    EXPECT_EQ(t.sp, u.sp);
    ASSERT_EQ(t.register_sets.size(), u.register_sets.size());
    for (size_t k = 0; k < t.register_sets.size(); ++k) {
      EXPECT_EQ(t.register_sets[k].note_type, u.register_sets[k].note_type);
      EXPECT_EQ(t.register_sets[k].bytes, u.register_sets[k].bytes);
    }
  }
  ASSERT_EQ(a.modules.size(), b.modules.size());
  for (size_t i = 0; i < a.modules.size(); ++i)
    expectSameModule(a.modules[i], b.modules[i]);
  expectSameStats(a.stats, b.stats);
  EXPECT_EQ(a.warnings, b.warnings);
}

TEST(MetadataCodec, RoundTripsEveryField) {
  const SnapshotMetadata original = fullMetadata();
  const std::string json = encodeMetadata(original);
  auto decoded = decodeMetadata(json);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expectSameMetadata(original, *decoded);
  EXPECT_EQ(encodeMetadata(*decoded), json);
}

TEST(MetadataCodec, RoundTripsDefaults) {
  auto decoded = decodeMetadata(encodeMetadata(SnapshotMetadata{}));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expectSameMetadata(SnapshotMetadata{}, *decoded);
}

TEST(MetadataCodec, WritesAddressesAsHexAndBytesAsHexObjects) {
  const std::string json = encodeMetadata(fullMetadata());
  EXPECT_NE(json.find("\"start\":\"0x555555554000\""), std::string::npos) << json;
  EXPECT_NE(json.find("[\"0xffffffffff600000\",\"0xffffffffff601000\",\"unreadable\"]"),
            std::string::npos);
  EXPECT_NE(json.find("\"comm\":{\"hex\":\"636f6d6dfffe\"}"), std::string::npos);
  EXPECT_NE(json.find("\"exe\":\"/usr/bin/\xe2\x82\xac\""), std::string::npos); // valid UTF-8
  EXPECT_NE(json.find("\"metadata_version\":1"), std::string::npos);
}

TEST(MetadataCodec, AcceptsAddressesAsNumbersAndIgnoresUnknownMembers) {
  auto decoded = decodeMetadata(R"({"future_field": [1, 2], "regions": [
      {"start": 4096, "end": "0x2000", "kind": "heap", "pages": [[4096, 8192, "stored"]],
       "also_new": true}]})");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_EQ(decoded->regions.size(), 1u);
  EXPECT_EQ(decoded->regions[0].map().start, 0x1000u);
  EXPECT_EQ(decoded->regions[0].map().end, 0x2000u);
  EXPECT_EQ(decoded->regions[0].kind, RegionKind::Heap);
}

struct BadDocument {
  const char* json;
  const char* message_part;
};

TEST(MetadataCodec, RejectsBadDocumentsWithAClearMessage) {
  const BadDocument cases[] = {
      {"", "invalid json"},
      {"{\"regions\": [", "invalid json"},
      {"[]", "expected an object"},
      {"{\"metadata_version\": 2}", "newer than this build"},
      {"{\"process\": {\"pid\": \"12\"}}", "process.pid: expected an integer"},
      {"{\"process\": {\"pid\": 3000000000}}", "process.pid: integer out of range"},
      {"{\"process\": {\"uid\": [1, 2]}}", "process.uid: expected an array of 4"},
      {"{\"regions\": [{\"start\": \"0x10\"}]}", "regions[0]: a region needs start and end"},
      {"{\"regions\": [{\"start\": \"10\", \"end\": \"0x20\"}]}", "regions[0].start: expected an"},
      {"{\"regions\": [{\"start\": \"0x10000000000000000\", \"end\": \"0x20\"}]}",
       "expected an address"},
      {"{\"regions\": [{\"start\": \"0x20\", \"end\": \"0x10\"}]}", "is not below end"},
      {"{\"regions\": [{\"start\": \"0x0\", \"end\": \"0x10\", \"kind\": \"weird\"}]}",
       "unknown region kind \"weird\""},
      {"{\"regions\": [{\"start\": \"0x0\", \"end\": \"0x10\", \"perms\": \"rwxx\"}]}",
       "expected permissions"},
      {"{\"regions\": [{\"start\": \"0x0\", \"end\": \"0x2000\", \"pages\": "
       "[[\"0x0\", \"0x1000\", \"gone\"]]}]}",
       "unknown page state \"gone\""},
      {"{\"regions\": [{\"start\": \"0x0\", \"end\": \"0x2000\", \"pages\": "
       "[[\"0x1000\", \"0x2000\", \"zero\"], [\"0x0\", \"0x1000\", \"zero\"]]}]}",
       "out of order"},
      {"{\"regions\": [{\"start\": \"0x0\", \"end\": \"0x2000\", \"pages\": "
       "[[\"0x0\", \"0x3000\", \"zero\"]]}]}",
       "outside its region"},
      {"{\"regions\": [{\"start\": \"0x1000\", \"end\": \"0x2000\"}, "
       "{\"start\": \"0x0\", \"end\": \"0x1000\"}]}",
       "overlaps or precedes"},
      {"{\"threads\": [{\"register_sets\": [{\"bytes\": \"abc\"}]}]}", "odd length"},
      {"{\"threads\": [{\"register_sets\": [{\"bytes\": \"zz\"}]}]}", "invalid hex"},
      {"{\"comm\": 5, \"process\": {\"comm\": {\"hex\": 5}}}", "process.comm: expected a string"},
      {"{\"stats\": {\"phase_seconds\": {\"copy\": \"fast\"}}}", "stats.phase_seconds.copy"},
      {"{\"partial\": 1}", "partial: expected true or false"},
  };
  for (const auto& c : cases) {
    auto decoded = decodeMetadata(c.json);
    ASSERT_FALSE(decoded.ok()) << c.json;
    EXPECT_EQ(decoded.error().code, ErrorCode::Malformed) << c.json;
    EXPECT_NE(decoded.error().message.find(c.message_part), std::string::npos)
        << c.json << " -> " << decoded.error().message;
    EXPECT_EQ(decoded.error().message.find('\n'), std::string::npos);
  }
}

// Damaged documents of every kind give an error or a value, never an exception or a crash.
TEST(MetadataCodec, SurvivesMutatedDocuments) {
  const std::string json = encodeMetadata(fullMetadata());
  std::mt19937_64 random(42);
  for (size_t cut = 0; cut < json.size(); cut += 7) {
    auto decoded = decodeMetadata(std::string_view(json).substr(0, cut));
    EXPECT_FALSE(decoded.ok()) << "cut at " << cut;
  }
  static constexpr char kNoise[] = "{}[]\",:0x19aez-. \\";
  for (int i = 0; i < 400; ++i) {
    std::string mutated = json;
    mutated[random() % mutated.size()] = kNoise[random() % (sizeof kNoise - 1)];
    auto decoded = decodeMetadata(mutated); // must return, one way or the other
    // The decoder's own JSON reader accepts no text that nlohmann::json rejects.
    if (!nlohmann::json::accept(mutated)) {
      EXPECT_FALSE(decoded.ok()) << mutated;
    }
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.error().code, ErrorCode::Malformed);
    }
  }
}

TEST(MetadataCodec, ReadsJsonEscapesAndWhiteSpace) {
  auto decoded =
      decodeMetadata(" \n{ \"tool_version\" : \"a\\u00e9\\ud83d\\ude00\\n\\/\\\"\\\\\" ,"
                     "\r\n\t\"warnings\": [ ] , \"process\": {\"pid\": -0, \"cmdline\": null},"
                     "\"stats\": {\"pause_seconds\": 1.5e-3}} \n");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->tool_version, "a\xc3\xa9\xf0\x9f\x98\x80\n/\"\\");
  EXPECT_EQ(decoded->stats.pause_seconds, 1.5e-3);
  for (const char* bad :
       {"{\"tool_version\": \"\\ud83d\"}", "{\"tool_version\": \"\\x\"}",
        "{\"tool_version\": \"tab\there\"}", "{} {}", "{\"a\": 01}", "{\"a\": [1,]}", "{\"a\": 1,}",
        "{\"a\" 1}", "{\"a\": tru}", "{\"a\": -}", "{\"a\": 1.}", "{\"a\": 1e}"}) {
    EXPECT_FALSE(nlohmann::json::accept(bad)) << bad;
    auto result = decodeMetadata(bad);
    EXPECT_FALSE(result.ok()) << bad;
  }
  std::string deep(100000, '[');
  auto result = decodeMetadata("{\"future\": " + deep);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("nested too deeply"), std::string::npos);
}

TEST(MetadataCodec, StatsBlockRoundTrips) {
  StatsBlock block;
  block.stats = fullMetadata().stats;
  block.partial = true;
  block.partial_reason = "target exited while chunks were written";
  auto decoded = decodeStatsBlock(encodeStatsBlock(block));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expectSameStats(block.stats, decoded->stats);
  EXPECT_TRUE(decoded->partial);
  EXPECT_EQ(decoded->partial_reason, block.partial_reason);

  auto plain = decodeCaptureStats(encodeCaptureStats(block.stats));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  expectSameStats(block.stats, *plain);
  EXPECT_FALSE(decodeCaptureStats("{\"threads\": -1}").ok());
}

TEST(MetadataCodec, ModuleHeadRoundTripsAndChecksPieces) {
  ModuleBlockHead head;
  head.record = fullMetadata().modules[0];
  head.file_size = 5000;
  head.pieces = {{0, 64}, {64, 100}, {4000, 1000}};
  auto decoded = decodeModuleHead(encodeModuleHead(head));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expectSameModule(head.record, decoded->record);
  EXPECT_EQ(decoded->file_size, 5000u);
  EXPECT_EQ(decoded->pieces, head.pieces);

  for (const char* bad : {R"({"file_size": 100, "pieces": [[0, 101]]})",
                          R"({"file_size": 100, "pieces": [[50, 10], [40, 5]]})",
                          R"({"file_size": 100, "pieces": [[18446744073709551615, 2]]})",
                          R"({"file_size": 100, "pieces": [[0]]})"}) {
    auto result = decodeModuleHead(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().code, ErrorCode::Malformed);
  }
}

TEST(PageState, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(PageState::Redacted); ++i) {
    const auto state = static_cast<PageState>(i);
    EXPECT_EQ(pageStateFromString(toString(state)), state);
  }
  EXPECT_EQ(toString(PageState::NotPresent), "not-present");
  EXPECT_FALSE(pageStateFromString("Stored").has_value());
}

} // namespace
} // namespace procsnap

namespace procsnap {
namespace {

// count copies of element, comma-separated, in a JSON array.
std::string manyElements(std::string_view element, size_t count) {
  std::string out = "[";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0)
      out += ',';
    out += element;
  }
  return out + "]";
}

// count one-page regions one after another.
std::string manyRegions(size_t count) {
  std::string out = "{\"regions\": [";
  char region[80];
  for (size_t i = 0; i < count; ++i) {
    std::snprintf(region, sizeof region, "%s{\"start\":\"0x%zx\",\"end\":\"0x%zx\"}",
                  i > 0 ? "," : "", (i + 1) << 12, (i + 2) << 12);
    out += region;
  }
  return out + "]}";
}

// Issue 13: a few bytes per record in the document must not buy unbounded memory. Each list
// one past its cap is refused with a message naming the cap; the cap itself is accepted.
TEST(MetadataCodec, CapsModulesThreadsAndRegions) {
  auto modules = decodeMetadata("{\"modules\": " + manyElements("{}", kMaxModules) + "}");
  ASSERT_TRUE(modules.ok()) << modules.error().message;
  EXPECT_EQ(modules->modules.size(), kMaxModules);
  struct Case {
    std::string json;
    std::string message_part;
  };
  const Case cases[] = {
      {"{\"modules\": " + manyElements("{}", kMaxModules + 1) + "}",
       "more than " + std::to_string(kMaxModules) + " modules (the limit)"},
      {"{\"threads\": " + manyElements("{}", kMaxThreads + 1) + "}",
       "more than " + std::to_string(kMaxThreads) + " threads (the limit)"},
      {manyRegions(std::min<uint64_t>(kMaxRegions + 1,
                                      kMaxDecodedDocumentBytes / (2 * sizeof(RegionRecord)) + 1)),
       "(the limit"},
  };
  for (const Case& c : cases) {
    auto decoded = decodeMetadata(c.json);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::Malformed);
    EXPECT_NE(decoded.error().message.find(c.message_part), std::string::npos)
        << decoded.error().message;
  }
}

// Lists with no count cap (register sets, page runs, cmdline) are held by the budget on what
// the decoded records take: 3-byte "{}" register sets cost far more decoded than as text.
TEST(MetadataCodec, RefusesDocumentsWhoseRecordsWouldTakeMoreThanTheBudget) {
  const size_t count = kMaxDecodedDocumentBytes / (2 * sizeof(RegisterSet)) + 1;
  const std::string json =
      "{\"threads\": [{\"register_sets\": " + manyElements("{}", count) + "}]}";
  ASSERT_LT(json.size(), size_t{16} << 20);
  auto decoded = decodeMetadata(json);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("MiB (the limit per document)"), std::string::npos)
      << decoded.error().message;
  auto strings = decodeMetadata(
      "{\"process\": {\"cmdline\": " +
      manyElements("\"\"", kMaxDecodedDocumentBytes / (2 * sizeof(std::string)) + 1) + "}}");
  ASSERT_FALSE(strings.ok());
  EXPECT_NE(strings.error().message.find("limit per document"), std::string::npos);
}

TEST(MetadataCodec, WarningsChargeTheirSizeAgainstTheBudget) {
  // Warnings charge their size: 200 MiB of short strings pass the 160 MiB budget.
  std::string document = "{\"warnings\":[";
  const std::string item = "\"" + std::string(1000, 'w') + "\"";
  for (int i = 0; i < 200 * 1024; ++i) {
    if (i)
      document += ",";
    document += item;
  }
  document += "]}";
  auto decoded = decodeMetadata(document);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("(the limit per document)"), std::string::npos)
      << decoded.error().message;
}

} // namespace
} // namespace procsnap
