// backtrace on a captured sample: each thread's chain of the sample's own functions equals
// gdb's `thread apply all bt` on the live process; and hostile registers (a stack pointer
// into unmapped memory) give bounded output, not a crash.
#include "tests/e2e/analyze_core_support.h"
#include "tests/support/archive_synth.h"
#include "tests/support/run_command.h"
#include "tests/support/sample_process.h"

#include <csignal>
#include <unistd.h>

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

// Each thread's chain of own (functions of the executable, in frames of module exe_name)
// equals gdb's, and every frame after the first was found by CFI.
void expectOwnChainsMatchGdb(const json& threads, const std::string& exe_name,
                             const std::set<std::string>& own,
                             std::map<int, std::vector<std::string>> gdb) {
  ASSERT_GE(threads.size(), 3u); // main and the two workers
  ASSERT_EQ(threads.size(), gdb.size());
  for (const json& thread : threads) {
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
}

class AnalyzeBacktraceTest : public SharedCaptureTest<AnalyzeBacktraceTest> {};

TEST_F(AnalyzeBacktraceTest, OwnFunctionsPerThreadMatchGdbOnTheLiveProcess) {
  json source = analyzeJson({"backtrace", captured_->archive()});
  ASSERT_TRUE(source.is_object());
  const std::string exe = captured_->truth()["exe"];
  std::set<std::string> own = definedFunctions(exe);
  ASSERT_TRUE(own.count("main"));
  expectOwnChainsMatchGdb(source["threads"], exe.substr(exe.rfind('/') + 1), own,
                          gdbBacktraces(captured_->pid()));
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

// The ELF core export-core writes of the archive unwinds to the same frames.
TEST_F(AnalyzeBacktraceTest, ExportedCoreGivesTheSameFrames) {
  const std::string core = captured_->file("sample.core");
  CommandResult exported = runAnalyze({"export-core", "-o", core, captured_->archive()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  json from_archive = analyzeJson({"backtrace", captured_->archive()});
  json from_core = analyzeJson({"backtrace", core});
  ASSERT_TRUE(from_archive.is_object() && from_core.is_object());
  ASSERT_EQ(from_core["threads"].size(), from_archive["threads"].size());
  for (size_t t = 0; t < from_archive["threads"].size(); ++t) {
    const json& a = from_archive["threads"][t]["frames"];
    const json& c = from_core["threads"][t]["frames"];
    ASSERT_EQ(c.size(), a.size()) << c.dump();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(c[i]["pc"], a[i]["pc"]);
      EXPECT_EQ(c[i]["function"], a[i]["function"]);
      EXPECT_EQ(c[i]["trust"], a[i]["trust"]);
    }
  }
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

// The executable deleted after the capture: its CFI comes from the stored mappings and its
// names from the archive's module sketch, and the chains still equal gdb's.
TEST(AnalyzeBacktraceDeleted, DeletedExecutableUnwindsFromStoredMemory) {
  auto dir = TempDir::create("procsnap-backtrace-deleted");
  ASSERT_TRUE(dir.ok());
  const std::string exe = dir->file("deleted_sample");
  CommandResult copy = runCommand({"cp", samplePath(SampleVariant::Pie), exe}, 10);
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  std::set<std::string> own = definedFunctions(exe);
  pid_t pid = spawnCommand({exe, "--exit-after", "60"});
  ASSERT_GT(pid, 0);
  // The workers name themselves once they run: wait for both.
  for (int i = 0; i < 200; ++i) {
    CommandResult comms =
        runCommand({"sh", "-c", "cat /proc/" + std::to_string(pid) + "/task/*/comm"}, 10);
    if (comms.out.find("sample-worker2") != std::string::npos)
      break;
    usleep(10000);
  }
  std::map<int, std::vector<std::string>> gdb = gdbBacktraces(pid);
  const std::string archive = dir->file("deleted.psnap");
  CommandResult capture =
      runCommand({PROCSNAP_CAPTURE_BIN, "-o", archive, "--quiet", std::to_string(pid)},
                 kAnalyzeTimeoutSeconds);
  kill(pid, SIGKILL);
  waitCommand(pid, std::chrono::seconds(10));
  ASSERT_EQ(capture.exit_code, 0) << capture.err;
  ASSERT_EQ(unlink(exe.c_str()), 0);
  json source = analyzeJson({"backtrace", archive});
  ASSERT_TRUE(source.is_object());
  expectOwnChainsMatchGdb(source["threads"], "deleted_sample", own, gdb);
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
