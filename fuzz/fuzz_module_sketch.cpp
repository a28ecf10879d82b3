// Fuzzes the way analyze turns stored module bytes into an ElfModule. The first input byte
// picks the path:
//   even: the rest is an ELF file, parsed by ElfModule::create (as for an embedded binary);
//   odd:  the rest is the decompressed content of a MODULE block (u32 json_length, the JSON
//         head, the pieces): it is compressed into a MODULE block of an otherwise valid
//         archive, opened with ArchiveSnapshot, laid out by moduleImage() and parsed.
// Every ElfModule that parses is then queried: sections, symbols, lookups, load bias.
#include "analyze/model/elf_module.h"
#include "analyze/sources/archive_snapshot.h"
#include "common/archive/metadata_codec.h"
#include "fuzz/fuzz_support.h"

#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include <algorithm>

namespace {

using namespace procsnap;
using procsnap::analyze::ElfModule;

// Lookups per parsed module: enough to reach every table of a seed, bounded for speed.
constexpr size_t kMaxLookups = 256;
// Where the fuzzed module is said to be mapped.
constexpr uint64_t kLoadAddress = 0x555555554000;
const char* const kModulePath = "/fuzz/module";

void checkLlvmError(llvm::Error error) {
  fuzz::checkErrorMessage(llvm::toString(std::move(error)));
}

void exerciseModule(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  auto module = ElfModule::create(std::move(buffer));
  if (!module) {
    checkLlvmError(module.takeError());
    return;
  }
  const ElfModule& elf = **module;
  for (const auto& warning : elf.warnings())
    fuzz::checkErrorMessage(warning);
  size_t lookups = 0;
  for (const auto& section : elf.sections()) {
    if (++lookups > kMaxLookups)
      break;
    (void)elf.sectionAt(section.address);
    if (section.size != 0)
      (void)elf.sectionAt(section.address + section.size - 1);
    (void)elf.findSection(section.name);
  }
  lookups = 0;
  for (const auto& symbol : elf.symbols()) {
    if (++lookups > kMaxLookups)
      break;
    // symbolAt() names an address inside a sized symbol (it scans back over a bounded number
    // of symbols, so the property holds where few symbols share an address).
    const auto* found = elf.symbolAt(symbol.address);
    if (!found && symbol.size != 0 && elf.symbols().size() < 64)
      fuzz::propertyFailed("a sized symbol's own address names no symbol",
                           symbol.raw_name + " size " + std::to_string(symbol.size));
    if (lookups < 16)
      (void)elf.findSymbols(symbol.name);
  }
  MapsEntry mapping;
  mapping.start = kLoadAddress;
  mapping.end = kLoadAddress + 0x10000;
  mapping.perms.read = true;
  mapping.perms.execute = true;
  mapping.path = kModulePath;
  mapping.inode = 1;
  (void)elf.loadBias({mapping});
}

void exerciseSketch(std::span<const std::byte> content) {
  SnapshotMetadata metadata;
  ModuleRecord record;
  record.path = kModulePath;
  record.load_address = kLoadAddress;
  // The head's own record when it decodes, so that moduleImage() finds the sketch.
  if (content.size() >= 4) {
    const uint32_t json_length = format::loadU32(content.data());
    if (json_length <= content.size() - 4) {
      auto head =
          decodeModuleHead({reinterpret_cast<const char*>(content.data()) + 4, json_length});
      if (head.ok())
        record = head->record;
      else
        fuzz::checkErrorMessage(head.error().message);
    }
  }
  metadata.modules.push_back(record);
  const std::string metadata_json = encodeMetadata(metadata);

  fuzz::ArchiveAssembler assembler;
  assembler.addDocumentBlock(format::BlockType::Metadata, fuzz::asBytes(metadata_json));
  assembler.addDocumentBlock(format::BlockType::Module, content);
  const std::vector<std::byte> archive = assembler.finish();
  auto file = fuzz::MemoryFile::create(archive);
  if (!file)
    return;
  analyze::OpenOptions options;
  auto snapshot = analyze::ArchiveSnapshot::open(file->path(), options);
  if (!snapshot) {
    checkLlvmError(snapshot.takeError());
    return;
  }
  auto image = (*snapshot)->moduleImage(0);
  if (!image) {
    checkLlvmError(image.takeError());
    return;
  }
  if (*image)
    exerciseModule(std::move(*image));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    exerciseModule(llvm::MemoryBuffer::getMemBufferCopy(
        llvm::StringRef(reinterpret_cast<const char*>(rest.data()), rest.size()), "fuzz-elf"));
    return 0;
  }
  exerciseSketch(rest);
  return 0;
}
