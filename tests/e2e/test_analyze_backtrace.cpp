// backtrace on a captured sample: each thread's chain of the sample's own functions equals
// gdb's `thread apply all bt` on the live process; and hostile registers (a stack pointer
// into unmapped memory) give bounded output, not a crash.
#include "tests/e2e/analyze_core_support.h"
#include "tests/support/archive_synth.h"

#include <cstring>
#include <map>
#include <regex>
#include <set>

namespace procsnap::test {
namespace {

using nlohmann::json;

// "ns::f(int, char*) const" -> "ns::f": gdb names frames without their parameters.
std::string withoutParameters(std::string name) {
  if (name.size() > 6 && name.compare(name.size() - 6, 6, " const") == 0)
    name.resize(name.size() - 6);
  if (name.empty() || name.back() != ')')
    return name;
  int depth = 0;
  for (size_t i = name.size(); i-- > 0;) {
    if (name[i] == ')')
      ++depth;
    else if (name[i] == '(' && --depth == 0)
      return name.substr(0, i);
  }
  return name;
}

// The functions the executable defines (nm -C), without parameters.
std::set<std::string> definedFunctions(const std::string& exe) {
  CommandResult nm = runCommand({"nm", "-C", "--defined-only", exe}, kAnalyzeTimeoutSeconds);
  EXPECT_EQ(nm.exit_code, 0) << nm.err;
  std::set<std::string> names;
  std::istringstream lines(nm.out);
  std::string line;
  while (std::getline(lines, line)) {
    // "0000000000001234 t name with spaces"
    if (line.size() < 20 || (line[17] != 't' && line[17] != 'T'))
      continue;
    names.insert(withoutParameters(line.substr(19)));
  }
  return names;
}

// gdb's frames per thread (by LWP), names only, of the live process, past main to _start as
// backtrace goes.
std::map<int, std::vector<std::string>> gdbBacktraces(pid_t pid) {
  CommandResult gdb = runCommand({"gdb", "-batch", "-nx", "-p", std::to_string(pid), "-ex",
                                  "set backtrace past-main on", "-ex", "thread apply all bt"},
                                 kGdbTimeoutSeconds);
  EXPECT_EQ(gdb.exit_code, 0) << gdb.err;
  std::map<int, std::vector<std::string>> threads;
  const std::regex header(R"(^Thread \d+ \(.*LWP (\d+)\))");
  const std::regex frame(R"(^#\d+\s+(?:0x[0-9a-f]+ in )?(.+?) \()");
  std::istringstream lines(gdb.out);
  std::string line;
  std::vector<std::string>* current = nullptr;
  std::smatch match;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, match, header))
      current = &threads[std::stoi(match[1])];
    else if (current && std::regex_search(line, match, frame))
      current->push_back(match[1]);
  }
  return threads;
}

class AnalyzeBacktraceTest : public SharedCaptureTest<AnalyzeBacktraceTest> {};

TEST_F(AnalyzeBacktraceTest, OwnFunctionsPerThreadMatchGdbOnTheLiveProcess) {
  json source = analyzeJson({"backtrace", captured_->archive()});
  ASSERT_TRUE(source.is_object());
  const std::string exe = captured_->truth()["exe"];
  const std::string exe_name = exe.substr(exe.rfind('/') + 1);
  std::set<std::string> own = definedFunctions(exe);
  ASSERT_TRUE(own.count("main"));
  std::map<int, std::vector<std::string>> gdb = gdbBacktraces(captured_->pid());
  ASSERT_GE(source["threads"].size(), 3u); // main and the two workers
  ASSERT_EQ(source["threads"].size(), gdb.size());
  for (const json& thread : source["threads"]) {
    SCOPED_TRACE(thread.dump());
    int tid = thread["tid"];
    ASSERT_TRUE(gdb.count(tid));
    std::vector<std::string> ours, theirs;
    const json& frames = thread["frames"];
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames[0]["trust"], "context");
    for (size_t i = 0; i < frames.size(); ++i) {
      const json& f = frames[i];
      if (i > 0) {
        EXPECT_EQ(f["trust"], "cfi") << "frame " << i;
      }
      EXPECT_EQ(f["inlined"], false);
      if (f["module"] == exe_name && f["function"].is_string())
        ours.push_back(withoutParameters(f["function"]));
    }
    for (const std::string& name : gdb[tid])
      if (own.count(name))
        theirs.push_back(name);
    EXPECT_FALSE(ours.empty());
    EXPECT_EQ(ours, theirs) << "tid " << tid;
    // The walk reaches the outermost frame (_start or clone3), which says where the stack ends.
    EXPECT_EQ(thread["complete"], true);
  }
  // The main thread's own chain ends in main, called from libc's start code.
  const json& main_thread = source["threads"][0];
  EXPECT_EQ(main_thread["tid"], captured_->pid());
  bool has_main = false;
  for (const json& f : main_thread["frames"])
    if (f["function"] == "main") {
      has_main = true;
      EXPECT_NE(f["file"].get<std::string>().find("sample_target.cpp"), std::string::npos);
      EXPECT_GT(f["line"].get<uint64_t>(), 0u);
    }
  EXPECT_TRUE(has_main);
}

TEST_F(AnalyzeBacktraceTest, ThreadSelectionMaxFramesAndTextShape) {
  const std::string tid = std::to_string(captured_->pid());
  json source = analyzeJson({"bt", captured_->archive(), "--thread", tid, "--max-frames", "2"});
  ASSERT_TRUE(source.is_object());
  ASSERT_EQ(source["threads"].size(), 1u);
  EXPECT_EQ(source["threads"][0]["frames"].size(), 2u);
  EXPECT_NE(source["threads"][0]["stop_reason"].get<std::string>().find("frame limit"),
            std::string::npos);

  std::string text = analyzeText({"backtrace", captured_->archive(), "--thread", tid});
  EXPECT_NE(text.find("TID " + tid + " ("), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(#1 +0x[0-9a-f]+ main\+0x[0-9a-f]+ \()")))
      << text;

  CommandResult missing = runAnalyze({"backtrace", captured_->archive(), "--thread", "1"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("no thread 1"), std::string::npos) << missing.err;
}

// Registers of a synthetic thread: NT_PRSTATUS with rip, rsp and rbp set (user_regs_struct
// offsets: rbp 4, rip 16, rsp 19, in words).
void setRegisters(ThreadRecord& thread, uint64_t rip, uint64_t rsp, uint64_t rbp) {
  auto put = [&](size_t word, uint64_t value) {
    std::memcpy(thread.register_sets[0].bytes.data() + word * 8, &value, sizeof value);
  };
  put(4, rbp);
  put(16, rip);
  put(19, rsp);
  thread.pc = rip;
  thread.sp = rsp;
}

TEST(AnalyzeBacktraceHostile, StackPointerIntoUnmappedMemoryIsBounded) {
  auto dir = TempDir::create("procsnap-backtrace-hostile");
  ASSERT_TRUE(dir.ok());
  SnapshotMetadata metadata = syntheticMetadata();
  ASSERT_EQ(metadata.threads.size(), 1u);
  // One thread whose rsp and rbp point nowhere; one whose stack is stored junk (the
  // synthetic bytes): the fallbacks scan it, within the frame limit.
  setRegisters(metadata.threads[0], 0x400123, 0xdead0000, 0xdead0010);
  ThreadRecord junk = metadata.threads[0];
  junk.tid = 4243;
  setRegisters(junk, 0x400123, 0x7ffef000, 0x7ffef100);
  metadata.threads.push_back(junk);
  metadata.stats.threads = 2;
  std::string path = dir->file("hostile.psnap");
  ASSERT_TRUE(writeSyntheticArchive(path, metadata, syntheticChunks(metadata)).ok());

  CommandResult result = runAnalyze({"backtrace", path, "--max-frames", "8", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json document = parseJson(result.out);
  const json& threads = document["sources"][0]["threads"];
  ASSERT_EQ(threads.size(), 2u) << result.out;
  // rsp unmapped: the first frame is all there is, and the reason says why the walk ended.
  EXPECT_EQ(threads[0]["frames"].size(), 1u) << threads[0].dump();
  EXPECT_EQ(threads[0]["frames"][0]["pc"], "0x400123");
  EXPECT_FALSE(threads[0]["stop_reason"].get<std::string>().empty());
  EXPECT_EQ(threads[0]["complete"], false);
  EXPECT_LE(threads[1]["frames"].size(), 8u);
  EXPECT_GE(threads[1]["frames"].size(), 1u);
}

} // namespace
} // namespace procsnap::test
