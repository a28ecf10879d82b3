#include "analyze/model/elf_module.h"

#include "common/proc/maps.h"
#include "tests/support/run_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

// Symbols of this test binary with known addresses at runtime.
extern "C" __attribute__((used, noinline)) int procsnap_elf_test_function(int x) {
  return x * 3 + 1;
}
__attribute__((used)) uint64_t procsnap_elf_test_global[16] = {1, 2, 3};
namespace procsnap_elf_test_ns {
__attribute__((used, noinline)) int frob(int x) {
  return x + 7;
}
} // namespace procsnap_elf_test_ns

namespace procsnap::analyze {
namespace {

using test::runCommand;

std::string selfPath() {
  char buffer[4096];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

std::unique_ptr<ElfModule> loadSelf() {
  auto buffer = llvm::MemoryBuffer::getFile(selfPath(), false, false);
  if (!buffer)
    return nullptr;
  auto module = ElfModule::create(std::move(*buffer));
  if (!module) {
    ADD_FAILURE() << llvm::toString(module.takeError());
    return nullptr;
  }
  return std::move(*module);
}

TEST(ElfModuleTest, SectionsMatchReadelf) {
  auto module = loadSelf();
  ASSERT_NE(module, nullptr);
  auto readelf = runCommand({"readelf", "-SW", selfPath()}, 30);
  ASSERT_EQ(readelf.exit_code, 0) << readelf.err;
  std::istringstream lines(readelf.out);
  std::string line;
  size_t compared = 0;
  while (std::getline(lines, line)) {
    // "  [16] .text             PROGBITS        0000000000004040 004040 0001a2 00  AX  0   0 16"
    size_t close = line.find("] ");
    if (line.find("  [") != 0 || close == std::string::npos ||
        line.find("[Nr]") != std::string::npos)
      continue;
    std::istringstream fields(line.substr(close + 2));
    std::string name, type, address, offset, size;
    fields >> name >> type >> address >> offset >> size;
    if (type == "NULL" || name == "NULL")
      continue; // the null section has no name: its type lands in `name`
    const ElfSection* section = module->findSection(name);
    ASSERT_NE(section, nullptr) << name;
    EXPECT_EQ(section->address, std::stoull(address, nullptr, 16)) << name;
    EXPECT_EQ(section->offset, std::stoull(offset, nullptr, 16)) << name;
    EXPECT_EQ(section->size, std::stoull(size, nullptr, 16)) << name;
    EXPECT_EQ(section->isNoBits(), type == "NOBITS") << name;
    ++compared;
  }
  EXPECT_EQ(compared, module->sections().size());
  EXPECT_GT(compared, 20u);
}

TEST(ElfModuleTest, BuildIdMatchesReadelfNotes) {
  auto module = loadSelf();
  ASSERT_NE(module, nullptr);
  auto readelf = runCommand({"readelf", "-n", selfPath()}, 30);
  ASSERT_EQ(readelf.exit_code, 0);
  size_t at = readelf.out.find("Build ID: ");
  ASSERT_NE(at, std::string::npos);
  std::string expected = readelf.out.substr(at + 10, readelf.out.find('\n', at) - at - 10);
  EXPECT_EQ(module->buildId(), expected);
  auto from_path = readBuildId(selfPath());
  ASSERT_TRUE(static_cast<bool>(from_path)) << llvm::toString(from_path.takeError());
  EXPECT_EQ(*from_path, expected);
}

TEST(ElfModuleTest, SymbolsMatchNmAndRuntimeAddressesGiveTheLoadBias) {
  auto module = loadSelf();
  ASSERT_NE(module, nullptr);
  auto nm = runCommand({"nm", selfPath()}, 30);
  ASSERT_EQ(nm.exit_code, 0);
  auto nmAddress = [&](const std::string& name) -> uint64_t {
    std::istringstream lines(nm.out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string address, type, symbol;
      if (fields >> address >> type >> symbol && symbol == name)
        return std::stoull(address, nullptr, 16);
    }
    return 0;
  };
  auto functions = module->findSymbols("procsnap_elf_test_function");
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_EQ(functions[0]->address, nmAddress("procsnap_elf_test_function"));
  EXPECT_TRUE(functions[0]->is_function);
  auto globals = module->findSymbols("procsnap_elf_test_global");
  ASSERT_EQ(globals.size(), 1u);
  EXPECT_EQ(globals[0]->address, nmAddress("procsnap_elf_test_global"));
  EXPECT_EQ(globals[0]->size, sizeof procsnap_elf_test_global);
  EXPECT_TRUE(globals[0]->is_object);
  // Demangled C++ names, found by their unqualified-parameter spelling too.
  auto frob = module->findSymbols("procsnap_elf_test_ns::frob");
  ASSERT_EQ(frob.size(), 1u);
  EXPECT_EQ(frob[0]->name, "procsnap_elf_test_ns::frob(int)");

  // Inside a symbol names it, with an offset.
  const ElfSymbol* inside = module->symbolAt(globals[0]->address + 8 * 5);
  ASSERT_NE(inside, nullptr);
  EXPECT_EQ(inside->raw_name, "procsnap_elf_test_global");
  const ElfSection* data = module->sectionAt(globals[0]->address);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->name, ".data");

  std::ifstream maps_file("/proc/self/maps");
  std::stringstream maps_text;
  maps_text << maps_file.rdbuf();
  auto maps = parseMaps(maps_text.str());
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  std::vector<MapsEntry> mine;
  for (const MapsEntry& entry : *maps) {
    if (entry.path == selfPath())
      mine.push_back(entry);
  }
  auto bias = module->loadBias(mine);
  ASSERT_TRUE(bias.has_value());
  EXPECT_EQ(functions[0]->address + static_cast<uint64_t>(*bias),
            reinterpret_cast<uint64_t>(&procsnap_elf_test_function));
  EXPECT_EQ(globals[0]->address + static_cast<uint64_t>(*bias),
            reinterpret_cast<uint64_t>(&procsnap_elf_test_global));
  EXPECT_FALSE(module->loadBias({}).has_value());
}

TEST(ElfModuleTest, NonElfIsAnErrorAndTruncatedElfDoesNotCrash) {
  auto text = ElfModule::create(llvm::MemoryBuffer::getMemBufferCopy("hello, not ELF", "text"));
  ASSERT_FALSE(static_cast<bool>(text));
  std::string message = llvm::toString(text.takeError());
  EXPECT_NE(message.find("'text'"), std::string::npos) << message;

  auto whole = llvm::MemoryBuffer::getFile(selfPath(), false, false);
  ASSERT_TRUE(static_cast<bool>(whole));
  for (size_t size : {size_t{16}, size_t{64}, size_t{200}, size_t{4096}, size_t{70000}}) {
    auto prefix = llvm::MemoryBuffer::getMemBufferCopy((*whole)->getBuffer().take_front(size),
                                                       "prefix-" + std::to_string(size));
    auto module = ElfModule::create(std::move(prefix));
    if (!module) {
      llvm::consumeError(module.takeError());
      continue;
    }
    // Whatever survived is usable; lookups on damaged tables return nothing, not garbage.
    (void)(*module)->symbolAt(0x1000);
    (void)(*module)->sectionAt(0x1000);
  }
  std::string damaged = (*whole)->getBuffer().str();
  // Point the section header table past the end of the file.
  uint64_t bogus = damaged.size() + 12345;
  std::memcpy(damaged.data() + 0x28, &bogus, sizeof bogus);
  auto module = ElfModule::create(llvm::MemoryBuffer::getMemBufferCopy(damaged, "damaged"));
  if (module) {
    EXPECT_TRUE((*module)->sections().empty());
    EXPECT_FALSE((*module)->warnings().empty());
  } else {
    llvm::consumeError(module.takeError());
  }
  EXPECT_EQ(procsnap_elf_test_function(1) + procsnap_elf_test_ns::frob(1), 12);
}

// A hostile snapshot may name a device or a FIFO as a module path: reading one would never
// end (/dev/zero) or block (a FIFO nobody writes). Both are refused at once.
TEST(ElfModuleFiles, OnlyRegularFilesAreRead) {
  auto zero = summarizeElfFile("/dev/zero");
  ASSERT_FALSE(zero);
  EXPECT_NE(llvm::toString(zero.takeError()).find("/dev/zero"), std::string::npos);
  char dir_template[] = "/tmp/procsnap-fifo-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string fifo = std::string(dir_template) + "/module";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(readRegularFile(fifo));
  auto build_id = readBuildId(fifo);
  EXPECT_FALSE(build_id);
  llvm::consumeError(build_id.takeError());
  unlink(fifo.c_str());
  rmdir(dir_template);
}

} // namespace
} // namespace procsnap::analyze
