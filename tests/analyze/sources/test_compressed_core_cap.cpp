// A compressed core stops decompressing at the size its own ELF headers declare (issue 13):
// a few KB of zstd that expand to far more than the core describes are refused early, not
// spooled to the temporary directory's end.
#include "analyze/model/snapshot.h"

#include "tests/support/archive_synth.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <llvm/BinaryFormat/ELF.h>
#include <zstd.h>

#include <cstring>

namespace procsnap::analyze {
namespace {

TEST(CompressedCoreCap, ABombPastTheDeclaredCoreSizeIsRefused) {
  namespace elf = llvm::ELF;
  constexpr size_t kExpanded = 64 << 20; // what the bomb expands to
  std::vector<std::byte> core(kExpanded);
  elf::Elf64_Ehdr header{};
  std::memcpy(header.e_ident, elf::ElfMagic, 4);
  header.e_ident[elf::EI_CLASS] = elf::ELFCLASS64;
  header.e_ident[elf::EI_DATA] = elf::ELFDATA2LSB;
  header.e_ident[elf::EI_VERSION] = elf::EV_CURRENT;
  header.e_type = elf::ET_CORE;
  header.e_machine = elf::EM_X86_64;
  header.e_version = elf::EV_CURRENT;
  header.e_phoff = sizeof header;
  header.e_ehsize = sizeof header;
  header.e_phentsize = sizeof(elf::Elf64_Phdr);
  header.e_phnum = 1;
  elf::Elf64_Phdr note{};
  note.p_type = elf::PT_NOTE;
  note.p_offset = sizeof header + sizeof note;
  note.p_filesz = 0;
  std::memcpy(core.data(), &header, sizeof header);
  std::memcpy(core.data() + sizeof header, &note, sizeof note);

  std::vector<std::byte> compressed(ZSTD_compressBound(core.size()));
  const size_t size =
      ZSTD_compress(compressed.data(), compressed.size(), core.data(), core.size(), 3);
  ASSERT_FALSE(ZSTD_isError(size));
  compressed.resize(size);
  ASSERT_LT(size, size_t{64} << 10);

  auto dir = test::TempDir::create("compressed-core-cap");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->file("bomb.core.zst");
  ASSERT_TRUE(test::writeFileBytes(path, compressed).ok());
  auto snapshot = openSnapshot(path);
  ASSERT_FALSE(static_cast<bool>(snapshot));
  const std::string message = llvm::toString(snapshot.takeError());
  EXPECT_NE(message.find("bytes its ELF headers declare"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

} // namespace
} // namespace procsnap::analyze
