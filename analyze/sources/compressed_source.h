// Opens a source file whatever its compression: zstd, xz, gzip (Boost.Iostreams, libzstd) or an
// lz4 frame (liblz4), as systemd-coredump stores cores, recognized by their magic bytes. A
// compressed file is decompressed into an unlinked temporary file under $TMPDIR that is then
// memory-mapped, so memory stays bounded whatever the size of the decompressed contents.
#pragma once

#include <llvm/ADT/StringRef.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include <cstdint>
#include <memory>
#include <string>

namespace procsnap::analyze {

enum class Compression { None, Zstd, Xz, Gzip, Lz4 };

llvm::StringRef toString(Compression compression); // "none", "zstd", "xz", "gzip", "lz4"

// The compression the first bytes of a file announce; None when they announce none we know.
Compression detectCompression(llvm::ArrayRef<uint8_t> first_bytes);

// Decompressed contents larger than this are refused: a bomb (or a damaged stream) must not
// fill the disk holding $TMPDIR. Far above any core this project is meant for.
inline constexpr uint64_t kMaxDecompressedBytes = uint64_t{256} << 30;

struct OpenedFile {
  std::unique_ptr<llvm::MemoryBuffer> buffer; // the (decompressed) contents, memory-mapped
  Compression compression = Compression::None;
};

// Maps path read-only, decompressing it first when it is compressed. Errors are one line and
// name the path; a compressed stream that ends early says "... is truncated: ...".
// max_decompressed_bytes exists for tests.
llvm::Expected<OpenedFile>
openPossiblyCompressed(llvm::StringRef path,
                       uint64_t max_decompressed_bytes = kMaxDecompressedBytes);

} // namespace procsnap::analyze
