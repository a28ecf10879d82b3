#include "capture/module_sketcher.h"
#include "common/proc/files.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace procsnap {
namespace {

namespace fs = std::filesystem;

// Runs a shell command and returns what it printed on stdout and stderr.
std::string runCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe)
    return "popen failed";
  char buffer[4096];
  size_t got = 0;
  while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0)
    output.append(buffer, got);
  pclose(pipe);
  return output;
}

// Output of a binutils tool on path, with the path itself replaced so that two files can be
// compared.
std::string toolOutput(const std::string& tool, const std::string& path) {
  std::string output = runCommand(tool + " '" + path + "'");
  for (size_t at = output.find(path); at != std::string::npos; at = output.find(path, at))
    output.replace(at, path.size(), "FILE");
  return output;
}

std::vector<std::byte> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty())
    std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// A temporary directory removed with its contents at the end of the test.
class TempDir final {
public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "procsnap-sketch-XXXXXX").string();
    if (mkdtemp(pattern.data()))
      path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored; // best effort: a leftover temp dir harms nothing
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (fs::path(path_) / name).string(); }
  std::string write(const std::string& name, std::span<const std::byte> bytes) const {
    std::string path = file(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    return path;
  }

private:
  std::string path_;
};

Result<ModuleSketch> sketchPath(const std::string& path, SketchOptions options = {},
                                std::vector<std::string>* warnings = nullptr) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error::make(ErrorCode::NotFound, "cannot open " + path);
  ModuleRecord base;
  base.path = path;
  auto sketch = sketchModule(fd, base, options, warnings);
  close(fd);
  return sketch;
}

std::string buildIdFromReadelf(const std::string& path) {
  std::string output = runCommand("readelf -n '" + path + "'");
  size_t at = output.find("Build ID: ");
  if (at == std::string::npos)
    return "";
  size_t start = at + std::strlen("Build ID: ");
  return output.substr(start, output.find('\n', start) - start);
}

std::vector<std::byte> imageOf(const ModuleSketch& sketch) {
  std::vector<std::byte> image(sketch.file_size);
  for (const ModuleSketch::Piece& piece : sketch.pieces)
    std::memcpy(image.data() + piece.offset, piece.bytes.data(), piece.bytes.size());
  return image;
}

// Pieces are sorted, disjoint, not adjacent (merged), inside the file and equal to its bytes.
void expectPiecesMatchFile(const ModuleSketch& sketch, const std::vector<std::byte>& file) {
  ASSERT_EQ(sketch.file_size, file.size());
  uint64_t previous_end = 0;
  for (size_t i = 0; i < sketch.pieces.size(); ++i) {
    const ModuleSketch::Piece& piece = sketch.pieces[i];
    ASSERT_FALSE(piece.bytes.empty());
    if (i > 0) {
      EXPECT_GT(piece.offset, previous_end) << "piece " << i << " not merged";
    }
    ASSERT_LE(piece.offset + piece.bytes.size(), file.size());
    EXPECT_EQ(std::memcmp(piece.bytes.data(), file.data() + piece.offset, piece.bytes.size()), 0)
        << "piece " << i << " at " << piece.offset;
    previous_end = piece.offset + piece.bytes.size();
  }
}

std::string libcPath() {
  auto maps = readMapsStable(getpid());
  if (!maps.ok())
    return "";
  for (const MapsEntry& entry : *maps)
    if (entry.path.find("/libc.so") != std::string::npos)
      return entry.path;
  return "";
}

// Sketches path and checks the sketch against the file and against binutils' view of it.
void checkSketchAgainstTools(const std::string& path, const std::string& label,
                             const std::vector<std::string>& expected_symbols) {
  SCOPED_TRACE(label + " " + path);
  std::vector<std::string> warnings;
  auto sketch = sketchPath(path, {}, &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  std::vector<std::byte> file = readFile(path);
  expectPiecesMatchFile(*sketch, file);
  EXPECT_EQ(sketch->record.file_size, file.size());
  EXPECT_FALSE(sketch->record.embedded);

  std::string expected_id = buildIdFromReadelf(path);
  ASSERT_FALSE(expected_id.empty()) << "readelf shows no build-id";
  EXPECT_EQ(sketch->record.build_id, expected_id);

  uint64_t stored = 0;
  for (const auto& piece : sketch->pieces)
    stored += piece.bytes.size();
  EXPECT_LT(stored, file.size());
  std::printf("[ sketch   ] %s: %zu pieces, %llu of %zu bytes (%.1f%%)\n", label.c_str(),
              sketch->pieces.size(), static_cast<unsigned long long>(stored), file.size(),
              100.0 * static_cast<double>(stored) / static_cast<double>(file.size()));

  TempDir dir;
  std::string image = dir.write("image", imageOf(*sketch));
  // One readelf run covers the headers, sections, segments (with the interpreter), notes,
  // the dynamic section, dynamic symbols, versions and the debuglink.
  std::string image_symbols;
  for (const char* tool :
       {"readelf -h -S -l -n -d --dyn-syms -V -W -x .gnu_debuglink", "nm", "nm -D"}) {
    std::string from_image = toolOutput(tool, image);
    EXPECT_EQ(from_image, toolOutput(tool, path)) << tool;
    if (std::string_view(tool).starts_with("nm"))
      image_symbols += from_image;
  }
  for (const std::string& symbol : expected_symbols)
    EXPECT_NE(image_symbols.find(symbol), std::string::npos) << symbol;
}

TEST(ModuleSketcher, OwnExecutableMatchesReadelfAndNm) {
  std::string exe = fs::read_symlink("/proc/self/exe").string();
  checkSketchAgainstTools(exe, "self", {" T main", " D __dso_handle"});
}

TEST(ModuleSketcher, LibcMatchesReadelfAndNm) {
  std::string libc = libcPath();
  ASSERT_FALSE(libc.empty()) << "libc not found in /proc/self/maps";
  checkSketchAgainstTools(libc, "libc", {" T malloc@@GLIBC_2.2.5", " T printf"});
}

TEST(ModuleSketcher, MapFilesDescriptorGivesTheSameSketch) {
  std::string libc = libcPath();
  auto maps = readMapsStable(getpid());
  ASSERT_TRUE(maps.ok());
  std::string map_file;
  for (const MapsEntry& entry : *maps)
    if (entry.path == libc) {
      char name[64];
      std::snprintf(name, sizeof name, "/proc/self/map_files/%llx-%llx",
                    static_cast<unsigned long long>(entry.start),
                    static_cast<unsigned long long>(entry.end));
      map_file = name;
      break;
    }
  ASSERT_FALSE(map_file.empty());
  auto through_map = sketchPath(map_file);
  auto through_path = sketchPath(libc);
  ASSERT_TRUE(through_map.ok()) << through_map.error().message;
  ASSERT_TRUE(through_path.ok()) << through_path.error().message;
  EXPECT_EQ(through_map->record.build_id, through_path->record.build_id);
  ASSERT_EQ(through_map->pieces.size(), through_path->pieces.size());
  for (size_t i = 0; i < through_map->pieces.size(); ++i) {
    EXPECT_EQ(through_map->pieces[i].offset, through_path->pieces[i].offset);
    EXPECT_EQ(through_map->pieces[i].bytes, through_path->pieces[i].bytes);
  }
}

TEST(ModuleSketcher, DeletedFileStillSketchesThroughItsDescriptor) {
  TempDir dir;
  std::string copy = dir.write("copy", readFile(libcPath()));
  int fd = open(copy.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(copy.c_str()), 0);
  ModuleRecord base;
  base.path = copy;
  base.deleted = true;
  auto sketch = sketchModule(fd, base, {});
  close(fd);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  EXPECT_EQ(sketch->record.build_id, buildIdFromReadelf(libcPath()));
  EXPECT_TRUE(sketch->record.deleted);
  EXPECT_EQ(sketch->record.path, copy);
}

TEST(ModuleSketcher, EmbedWholeFileUnlessTooLarge) {
  std::string libc = libcPath();
  std::vector<std::byte> file = readFile(libc);
  auto embedded = sketchPath(libc, SketchOptions{true, kDefaultMaxEmbedFileSize});
  ASSERT_TRUE(embedded.ok()) << embedded.error().message;
  EXPECT_TRUE(embedded->record.embedded);
  ASSERT_EQ(embedded->pieces.size(), 1u);
  EXPECT_EQ(embedded->pieces[0].offset, 0u);
  EXPECT_EQ(embedded->pieces[0].bytes, file);
  EXPECT_EQ(embedded->record.build_id, buildIdFromReadelf(libc));

  std::vector<std::string> warnings;
  auto sketched = sketchPath(libc, SketchOptions{true, file.size() - 1}, &warnings);
  ASSERT_TRUE(sketched.ok());
  EXPECT_FALSE(sketched->record.embedded);
  EXPECT_GT(sketched->pieces.size(), 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("embedding limit"), std::string::npos) << warnings[0];
}

// An ELFCLASS32 executable built with the system assembler and linker (binutils handles
// elf_i386 without multilib), with symbols, a build-id and a debuglink.
TEST(ModuleSketcher, Elf32Executable) {
  TempDir dir;
  {
    std::ofstream source(dir.file("t.s"));
    source << ".globl _start\n.globl counter\n.text\n_start: movl counter, %eax\n ret\n"
              "helper: ret\n.data\ncounter: .long 7\n.bss\nbuffer: .skip 64\n";
  }
  std::string debug = dir.file("t.debug");
  std::ofstream(debug) << "debug";
  std::string exe = dir.file("t32");
  std::string build =
      runCommand("cd '" + dir.file("") +
                 "' && as --32 -o t.o t.s && ld -m elf_i386 "
                 "--build-id -o t32 t.o && objcopy --add-gnu-debuglink=t.debug t32");
  if (!fs::exists(exe))
    GTEST_SKIP() << "cannot build an ELF32 test file: " << build;
  ASSERT_NE(runCommand("readelf -h '" + exe + "'").find("ELF32"), std::string::npos);
  checkSketchAgainstTools(exe, "elf32", {" T _start", " D counter", " t helper", " b buffer"});
}

// Section counts and the name table index stored in section 0 (gABI extended numbering).
TEST(ModuleSketcher, ExtendedSectionNumbering) {
  std::string exe = PROCSNAP_SAMPLE_PIE;
  std::vector<std::byte> bytes = readFile(exe);
  ASSERT_GT(bytes.size(), sizeof(Elf64_Ehdr)) << exe;
  auto header = std::make_unique<Elf64_Ehdr>();
  std::memcpy(header.get(), bytes.data(), sizeof(Elf64_Ehdr));
  Elf64_Shdr zero;
  std::memcpy(&zero, bytes.data() + header->e_shoff, sizeof zero);
  zero.sh_size = header->e_shnum;
  zero.sh_link = header->e_shstrndx;
  header->e_shnum = 0;
  header->e_shstrndx = SHN_XINDEX;
  std::memcpy(bytes.data(), header.get(), sizeof(Elf64_Ehdr));
  std::memcpy(bytes.data() + header->e_shoff, &zero, sizeof zero);

  TempDir dir;
  std::string modified = dir.write("extended", bytes);
  std::vector<std::string> warnings;
  auto sketch = sketchPath(modified, {}, &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  expectPiecesMatchFile(*sketch, bytes);
  std::string image = dir.write("image", imageOf(*sketch));
  std::string sections = toolOutput("readelf -S -W", modified);
  EXPECT_NE(sections.find(".symtab"), std::string::npos) << sections;
  EXPECT_EQ(toolOutput("readelf -S -W", image), sections);
  EXPECT_EQ(toolOutput("nm", image), toolOutput("nm", modified));
}

TEST(ModuleSketcher, BuildIdFromNoteBytes) {
  auto note = [](uint32_t type, std::string name, std::vector<uint8_t> desc, size_t align) {
    std::vector<std::byte> out;
    auto put32 = [&](uint32_t v) {
      for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::byte>(v >> (8 * i)));
    };
    put32(static_cast<uint32_t>(name.size() + 1));
    put32(static_cast<uint32_t>(desc.size()));
    put32(type);
    for (char c : name)
      out.push_back(static_cast<std::byte>(c));
    out.push_back(std::byte{0});
    while (out.size() % align)
      out.push_back(std::byte{0});
    for (uint8_t b : desc)
      out.push_back(static_cast<std::byte>(b));
    while (out.size() % align)
      out.push_back(std::byte{0});
    return out;
  };
  std::vector<uint8_t> id = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x0a};

  auto plain = note(NT_GNU_BUILD_ID, "GNU", id, 4);
  EXPECT_EQ(buildIdFromNoteBytes(plain), "deadbeef0001020a");

  // After a GNU property note (type 5) in an 8-aligned PT_NOTE.
  auto both = note(NT_GNU_PROPERTY_TYPE_0, "GNU", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 8);
  auto second = note(NT_GNU_BUILD_ID, "GNU", id, 8);
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_EQ(buildIdFromNoteBytes(both, 8), "deadbeef0001020a");

  // NT_PRPSINFO has the same number as NT_GNU_BUILD_ID: the name tells them apart.
  EXPECT_EQ(buildIdFromNoteBytes(note(NT_PRPSINFO, "CORE", id, 4)), "");
  EXPECT_EQ(buildIdFromNoteBytes({}), "");
  std::vector<std::byte> cut(plain.begin(), plain.end() - 1);
  EXPECT_EQ(buildIdFromNoteBytes(cut), "");
  auto huge_name = plain;
  huge_name[0] = std::byte{0xff};
  huge_name[3] = std::byte{0xff};
  EXPECT_EQ(buildIdFromNoteBytes(huge_name), "");
  auto huge_desc = plain;
  huge_desc[7] = std::byte{0xff};
  EXPECT_EQ(buildIdFromNoteBytes(huge_desc), "");
}

// Damaged inputs give errors or warnings, never a crash, an out-of-bounds read (ASan builds
// check that) or an allocation beyond the file size.
class DamagedElf : public ::testing::Test {
protected:
  void SetUp() override {
    // The sample target: a small gcc-built PIE with a symbol table, so that hundreds of
    // damaged copies are cheap to write.
    original_ = readFile(PROCSNAP_SAMPLE_PIE);
    ASSERT_GT(original_.size(), sizeof(Elf64_Ehdr));
    std::memcpy(&header_, original_.data(), sizeof header_);
  }

  std::vector<std::byte> withHeader(const Elf64_Ehdr& header) const {
    std::vector<std::byte> bytes = original_;
    std::memcpy(bytes.data(), &header, sizeof header);
    return bytes;
  }

  Elf64_Shdr section(size_t index) const {
    Elf64_Shdr shdr;
    std::memcpy(&shdr, original_.data() + header_.e_shoff + index * sizeof shdr, sizeof shdr);
    return shdr;
  }

  std::vector<std::byte> withSection(size_t index, const Elf64_Shdr& shdr) const {
    std::vector<std::byte> bytes = original_;
    std::memcpy(bytes.data() + header_.e_shoff + index * sizeof shdr, &shdr, sizeof shdr);
    return bytes;
  }

  size_t findSection(uint32_t type) const {
    for (size_t i = 0; i < header_.e_shnum; ++i)
      if (section(i).sh_type == type)
        return i;
    return 0;
  }

  Result<ModuleSketch> sketchBytes(std::span<const std::byte> bytes,
                                   std::vector<std::string>* warnings = nullptr) {
    std::string path = dir_.write("variant" + std::to_string(counter_++), bytes);
    auto sketch = sketchPath(path, {}, warnings);
    if (sketch.ok()) {
      uint64_t stored = 0;
      for (const auto& piece : sketch->pieces) {
        EXPECT_LE(piece.offset + piece.bytes.size(), bytes.size());
        stored += piece.bytes.size();
      }
      EXPECT_LE(stored, bytes.size());
    }
    return sketch;
  }

  void expectError(std::span<const std::byte> bytes, ErrorCode code, std::string_view words) {
    auto sketch = sketchBytes(bytes);
    ASSERT_FALSE(sketch.ok());
    EXPECT_EQ(sketch.error().code, code) << sketch.error().message;
    EXPECT_NE(sketch.error().message.find(words), std::string::npos) << sketch.error().message;
    EXPECT_EQ(sketch.error().message.find('\n'), std::string::npos);
  }

  TempDir dir_;
  int counter_ = 0;
  std::vector<std::byte> original_;
  Elf64_Ehdr header_{};
};

TEST_F(DamagedElf, TruncatedFiles) {
  expectError({}, ErrorCode::Truncated, "not an ELF file");
  expectError(std::span(original_).first(10), ErrorCode::Truncated, "not an ELF file");
  expectError(std::span(original_).first(40), ErrorCode::Truncated, "ELF header truncated");
  expectError(std::span(original_).first(sizeof(Elf64_Ehdr)), ErrorCode::Malformed,
              "program header table");
  expectError(std::span(original_).first(original_.size() / 2), ErrorCode::Malformed,
              "section header table");
}

TEST_F(DamagedElf, BadIdentification) {
  std::vector<std::byte> bytes = original_;
  bytes[1] = std::byte{'X'};
  expectError(bytes, ErrorCode::Malformed, "bad magic");
  bytes = original_;
  bytes[EI_CLASS] = std::byte{3};
  expectError(bytes, ErrorCode::Unsupported, "ELF class 3");
  bytes = original_;
  bytes[EI_DATA] = std::byte{ELFDATA2MSB};
  expectError(bytes, ErrorCode::Unsupported, "little-endian");
  expectError(std::span(original_).subspan(1), ErrorCode::Malformed, "bad magic");
}

TEST_F(DamagedElf, HostileTables) {
  Elf64_Ehdr h = header_;
  h.e_phoff = ~uint64_t{0} - 8;
  expectError(withHeader(h), ErrorCode::Malformed, "program header table");
  h = header_;
  h.e_phnum = 0xfffe;
  expectError(withHeader(h), ErrorCode::Malformed, "program header table");
  h = header_;
  h.e_phentsize = 4;
  expectError(withHeader(h), ErrorCode::Malformed, "entry size");
  h = header_;
  h.e_shoff = original_.size();
  expectError(withHeader(h), ErrorCode::Malformed, "section header table");
  h = header_;
  h.e_shentsize = 10;
  expectError(withHeader(h), ErrorCode::Malformed, "entry size");
  h = header_;
  h.e_shoff = 0;
  expectError(withHeader(h), ErrorCode::Malformed, "section header table at offset 0");

  // A section count of 2^48 through section 0 must not allocate.
  h = header_;
  h.e_shnum = 0;
  Elf64_Shdr zero = section(0);
  zero.sh_size = uint64_t{1} << 48;
  std::vector<std::byte> bytes = withHeader(h);
  std::memcpy(bytes.data() + h.e_shoff, &zero, sizeof zero);
  expectError(bytes, ErrorCode::Malformed, "section header table");

  // PN_XNUM with a huge count in section 0's sh_info.
  h = header_;
  h.e_phnum = PN_XNUM;
  zero = section(0);
  zero.sh_info = 0xffffffff;
  bytes = withHeader(h);
  std::memcpy(bytes.data() + h.e_shoff, &zero, sizeof zero);
  expectError(bytes, ErrorCode::Malformed, "program header table");
}

TEST_F(DamagedElf, BadSectionsAreLeftOutWithWarnings) {
  size_t symtab = findSection(SHT_SYMTAB);
  ASSERT_NE(symtab, 0u);

  Elf64_Shdr s = section(symtab);
  s.sh_offset = original_.size() - 8;
  std::vector<std::string> warnings;
  auto sketch = sketchBytes(withSection(symtab, s), &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(".symtab section " + std::to_string(symtab)), std::string::npos)
      << warnings[0];

  s = section(symtab);
  s.sh_size = ~uint64_t{0};
  warnings.clear();
  sketch = sketchBytes(withSection(symtab, s), &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  EXPECT_EQ(warnings.size(), 1u);

  s = section(symtab);
  s.sh_link = 0xffff;
  warnings.clear();
  sketch = sketchBytes(withSection(symtab, s), &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("does not exist"), std::string::npos) << warnings[0];

  Elf64_Ehdr h = header_;
  h.e_shstrndx = 0xfff0;
  warnings.clear();
  sketch = sketchBytes(withHeader(h), &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("section name table index"), std::string::npos) << warnings[0];

  // Two sections claiming overlapping bytes (the whole file) merge into one piece.
  s = section(symtab);
  s.sh_offset = 0;
  s.sh_size = original_.size();
  warnings.clear();
  sketch = sketchBytes(withSection(symtab, s), &warnings);
  ASSERT_TRUE(sketch.ok()) << sketch.error().message;
  ASSERT_EQ(sketch->pieces.size(), 1u);
  EXPECT_EQ(sketch->pieces[0].bytes.size(), original_.size());
}

// Random damage to the headers of a small ELF file: every outcome must be an error or a sketch
// inside the file.
TEST_F(DamagedElf, RandomHeaderCorruption) {
  constexpr int kVariants = 200;
  const size_t header_bytes = std::min<size_t>(original_.size(), 4096);
  std::mt19937 random(12345); // fixed seed: failures reproduce
  size_t sketched = 0;
  for (int i = 0; i < kVariants; ++i) {
    std::vector<std::byte> bytes = original_;
    int flips = 1 + static_cast<int>(random() % 8);
    for (int f = 0; f < flips; ++f)
      bytes[16 + random() % (header_bytes - 16)] = static_cast<std::byte>(random());
    // Also damage the section header table, where the hostile values matter most.
    size_t table = header_.e_shoff + random() % (header_.e_shnum * sizeof(Elf64_Shdr));
    bytes[table] = static_cast<std::byte>(random());
    auto sketch = sketchBytes(bytes);
    sketched += sketch.ok();
  }
  EXPECT_GT(sketched, 0u);
}

TEST(ModuleSketcher, NotARegularFile) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  auto sketch = sketchModule(fds[0], ModuleRecord{}, {});
  close(fds[0]);
  close(fds[1]);
  ASSERT_FALSE(sketch.ok());
  EXPECT_EQ(sketch.error().code, ErrorCode::InvalidArgument);
}

} // namespace
} // namespace procsnap
