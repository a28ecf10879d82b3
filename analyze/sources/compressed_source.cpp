#include "analyze/sources/compressed_source.h"

#include <boost/iostreams/device/file_descriptor.hpp>
#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filter/lzma.hpp>
#include <boost/iostreams/filtering_stream.hpp>
#include <llvm/BinaryFormat/ELF.h>
#include <llvm/Support/FormatVariadic.h>
#include <lz4frame.h>
#include <zstd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace procsnap::analyze {

namespace {

// Compressed bytes read at a time, and decompressed bytes written at a time: large enough that
// syscalls cost nothing next to decompression, small enough to stay out of the way.
constexpr size_t kIoBlockBytes = size_t{1} << 20;

llvm::Error errorFor(llvm::StringRef path, const std::string& what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "cannot open '%s': %s",
                                 path.str().c_str(), what.c_str());
}

llvm::Error errnoError(llvm::StringRef path, const std::string& what, int error_number) {
  return errorFor(path, what + ": " + std::generic_category().message(error_number));
}

// A file descriptor that closes itself.
class FileDescriptor final {
public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

private:
  int fd_;
};

// Where decompressed bytes go: an unlinked temporary file (it vanishes with its descriptor,
// whatever happens to the process), with a cap on its size: the caller's limit, what the
// file system holding it has free (less a reserve), and, once the ELF and program headers are
// in, what the core declares (its last segment, note or section header table ends the file).
// A 33 KB bomb then stops at the size its headers claim, not at the disk's end.
class TemporarySink final {
public:
  TemporarySink(int fd, uint64_t limit) : fd_(fd), limit_(limit) {
    struct statvfs disk {};
    if (::fstatvfs(fd, &disk) == 0) {
      const uint64_t free_bytes = static_cast<uint64_t>(disk.f_bavail) * disk.f_frsize;
      disk_limit_ = free_bytes > kDiskReserveBytes ? free_bytes - kDiskReserveBytes : 0;
    }
  }

  // Appends bytes; an error names the path of the compressed source.
  llvm::Error write(llvm::StringRef source_path, const void* data, size_t size) {
    if (size > limit_ - std::min(limit_, written_))
      return errorFor(source_path, llvm::formatv("decompresses to more than {0} bytes; "
                                                 "decompress it yourself",
                                                 limit_)
                                       .str());
    if (size > disk_limit_ - std::min(disk_limit_, written_))
      return errorFor(source_path,
                      llvm::formatv("decompresses to more than the {0} bytes free for its "
                                    "temporary copy in $TMPDIR; decompress it yourself or set "
                                    "TMPDIR to a larger file system",
                                    disk_limit_)
                          .str());
    if (declared_size_ && size > *declared_size_ - std::min(*declared_size_, written_))
      return errorFor(source_path,
                      llvm::formatv("decompresses to more than the {0} bytes its ELF headers "
                                    "declare",
                                    *declared_size_)
                          .str());
    const char* cursor = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
      ssize_t done = ::write(fd_, cursor, left);
      if (done < 0 && errno == EINTR)
        continue;
      if (done <= 0)
        return errnoError(source_path, "cannot write the decompressed copy",
                          done < 0 ? errno : ENOSPC);
      cursor += done;
      left -= static_cast<size_t>(done);
    }
    written_ += size;
    if (!declared_size_ && !headers_unusable_)
      learnDeclaredSize();
    return llvm::Error::success();
  }
  uint64_t written() const { return written_; }

private:
  // Keeps this much of the temporary directory's file system free for everyone else.
  static constexpr uint64_t kDiskReserveBytes = uint64_t{256} << 20;

  // Reads back the ELF header and program headers once they are written, and sets
  // declared_size_ to the end of the last thing they place in the file. A file that is not a
  // 64-bit ELF file gets no such cap (the core parser rejects it afterwards anyway).
  void learnDeclaredSize() {
    llvm::ELF::Elf64_Ehdr header;
    if (written_ < sizeof header)
      return;
    if (::pread(fd_, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header) ||
        std::memcmp(header.e_ident, llvm::ELF::ElfMagic, 4) != 0 ||
        header.e_ident[llvm::ELF::EI_CLASS] != llvm::ELF::ELFCLASS64 ||
        header.e_phentsize != sizeof(llvm::ELF::Elf64_Phdr)) {
      headers_unusable_ = true;
      return;
    }
    uint64_t count = header.e_phnum;
    uint64_t end = header.e_shoff + uint64_t{header.e_shnum} * header.e_shentsize;
    if (count == kExtendedNumbering) { // the real count is in section header 0's sh_info
      llvm::ELF::Elf64_Shdr first;
      if (header.e_shoff > written_ || written_ - header.e_shoff < sizeof first)
        return; // not written yet
      if (::pread(fd_, &first, sizeof first, static_cast<off_t>(header.e_shoff)) !=
          static_cast<ssize_t>(sizeof first)) {
        headers_unusable_ = true;
        return;
      }
      count = first.sh_info;
      end = std::max<uint64_t>(end, header.e_shoff + sizeof first);
    }
    if (count > kMaxProgramHeaders) {
      headers_unusable_ = true;
      return;
    }
    const uint64_t table_bytes = count * sizeof(llvm::ELF::Elf64_Phdr);
    if (header.e_phoff > written_ || written_ - header.e_phoff < table_bytes)
      return; // not written yet
    std::vector<llvm::ELF::Elf64_Phdr> table(static_cast<size_t>(count));
    if (::pread(fd_, table.data(), table_bytes, static_cast<off_t>(header.e_phoff)) !=
        static_cast<ssize_t>(table_bytes)) {
      headers_unusable_ = true;
      return;
    }
    end = std::max(end, header.e_phoff + table_bytes);
    for (const llvm::ELF::Elf64_Phdr& segment : table) {
      if (segment.p_offset + segment.p_filesz < segment.p_offset) {
        headers_unusable_ = true; // wraps: the parser will say so
        return;
      }
      end = std::max(end, segment.p_offset + segment.p_filesz);
    }
    // Tools may pad a core to a page; more than that is not in any segment.
    declared_size_ = end + kPageSlackBytes;
  }

  static constexpr uint64_t kPageSlackBytes = 64 * 1024;
  // e_phnum when the real count is in section header 0 (PN_XNUM in <elf.h>).
  static constexpr uint64_t kExtendedNumbering = 0xffff;
  // More program headers than this are not read back (the core parser has its own limit).
  static constexpr uint64_t kMaxProgramHeaders = uint64_t{1} << 22;

  int fd_;
  uint64_t limit_;
  uint64_t disk_limit_ = UINT64_MAX;
  std::optional<uint64_t> declared_size_;
  bool headers_unusable_ = false;
  uint64_t written_ = 0;
};

// Reads up to size bytes (fewer only at end of file); -1 with errno on failure.
ssize_t readFully(int fd, void* data, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t done = ::read(fd, static_cast<char*>(data) + got, size - got);
    if (done < 0 && errno == EINTR)
      continue;
    if (done < 0)
      return -1;
    if (done == 0)
      break;
    got += static_cast<size_t>(done);
  }
  return static_cast<ssize_t>(got);
}

// An unlinked file in $TMPDIR (or /tmp): O_TMPFILE, or mkstemp and unlink where the file
// system lacks O_TMPFILE.
llvm::Expected<int> createUnlinkedTemporaryFile(llvm::StringRef source_path) {
  const char* env = std::getenv("TMPDIR");
  std::string dir = env && *env ? env : "/tmp";
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0)
    return fd;
  std::string name = dir + "/procsnap-decompressed-XXXXXX";
  fd = ::mkstemp(name.data());
  if (fd < 0)
    return errnoError(source_path, "cannot create a temporary file in '" + dir + "'", errno);
  ::unlink(name.c_str()); // deliberately unchecked: at worst the file outlives us in $TMPDIR
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

std::string truncatedMessage(uint64_t compressed_bytes, uint64_t decompressed_bytes, size_t hint) {
  return llvm::formatv("is truncated: the compressed stream ends inside a frame after {0} "
                       "bytes (decompressed so far: {1} bytes; at least {2} more compressed "
                       "bytes were expected)",
                       compressed_bytes, decompressed_bytes, hint)
      .str();
}

llvm::Error truncatedError(llvm::StringRef path, const std::string& message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "'%s' %s", path.str().c_str(),
                                 message.c_str());
}

// libzstd streaming rather than Boost's zstd filter: Boost 1.74 reports no error when the input
// ends inside a frame. Concatenated and skippable frames are decoded as the zstd CLI does.
llvm::Error decompressZstd(llvm::StringRef path, int in_fd, TemporarySink& sink) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!context)
    return errorFor(path, "cannot create a zstd decompression context");
  std::vector<char> input(kIoBlockBytes);
  std::vector<char> output(ZSTD_DStreamOutSize());
  size_t last_result = 0; // 0: the last frame ended
  uint64_t compressed = 0;
  for (;;) {
    ssize_t got = readFully(in_fd, input.data(), input.size());
    if (got < 0)
      return errnoError(path, "cannot read", errno);
    if (got == 0)
      break;
    compressed += static_cast<uint64_t>(got);
    ZSTD_inBuffer in{input.data(), static_cast<size_t>(got), 0};
    // Call again while input is left, or while a full output buffer says the context may
    // hold more. Not after a frame ended with the input used up: that call would start
    // waiting for the next frame's header, and a complete stream would look truncated.
    bool output_full = false;
    while (in.pos < in.size || output_full) {
      ZSTD_outBuffer out{output.data(), output.size(), 0};
      last_result = ZSTD_decompressStream(context.get(), &out, &in);
      if (ZSTD_isError(last_result))
        return errorFor(path,
                        std::string("damaged zstd stream: ") + ZSTD_getErrorName(last_result));
      if (llvm::Error error = sink.write(path, output.data(), out.pos))
        return error;
      output_full = out.pos == out.size && last_result != 0;
    }
  }
  if (compressed == 0)
    return errorFor(path, "empty zstd stream");
  if (last_result != 0)
    return truncatedError(path, truncatedMessage(compressed, sink.written(), last_result));
  return llvm::Error::success();
}

// The LZ4 frame format (what `lz4` and systemd-coredump write). Boost has no lz4 filter.
llvm::Error decompressLz4(llvm::StringRef path, int in_fd, TemporarySink& sink) {
  LZ4F_dctx* raw_context = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw_context, LZ4F_VERSION)))
    return errorFor(path, "cannot create an lz4 decompression context");
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> context(
      raw_context, LZ4F_freeDecompressionContext);
  std::vector<char> input(kIoBlockBytes);
  std::vector<char> output(kIoBlockBytes);
  size_t hint = 0; // 0: the last frame ended
  uint64_t compressed = 0;
  for (;;) {
    ssize_t got = readFully(in_fd, input.data(), input.size());
    if (got < 0)
      return errnoError(path, "cannot read", errno);
    if (got == 0)
      break;
    compressed += static_cast<uint64_t>(got);
    size_t position = 0;
    // As for zstd: call again while input is left or the output buffer came back full, but
    // not after a frame ended with the input used up.
    bool output_full = false;
    while (position < static_cast<size_t>(got) || output_full) {
      size_t in_size = static_cast<size_t>(got) - position;
      size_t out_size = output.size();
      hint = LZ4F_decompress(context.get(), output.data(), &out_size, input.data() + position,
                             &in_size, nullptr);
      if (LZ4F_isError(hint))
        return errorFor(path, std::string("damaged lz4 stream: ") + LZ4F_getErrorName(hint));
      position += in_size;
      if (llvm::Error error = sink.write(path, output.data(), out_size))
        return error;
      output_full = out_size == output.size() && hint != 0;
    }
  }
  if (compressed == 0)
    return errorFor(path, "empty lz4 stream");
  if (hint != 0)
    return truncatedError(path, truncatedMessage(compressed, sink.written(), hint));
  return llvm::Error::success();
}

// xz and gzip through Boost.Iostreams: both report a stream that ends early (as an exception,
// caught here: nothing may escape the module).
llvm::Error decompressWithBoost(llvm::StringRef path, Compression compression, int in_fd,
                                TemporarySink& sink) {
  namespace io = boost::iostreams;
  try {
    io::filtering_istream in;
    if (compression == Compression::Xz)
      in.push(io::lzma_decompressor());
    else
      in.push(io::gzip_decompressor());
    in.push(io::file_descriptor_source(in_fd, io::never_close_handle));
    std::vector<char> output(kIoBlockBytes);
    while (in) {
      in.read(output.data(), static_cast<std::streamsize>(output.size()));
      std::streamsize got = in.gcount();
      if (got <= 0)
        break;
      if (llvm::Error error = sink.write(path, output.data(), static_cast<size_t>(got)))
        return error;
    }
    if (in.bad())
      return truncatedError(path, std::string("is truncated or damaged: the ") +
                                      std::string(toString(compression)) +
                                      " stream could not be read to its end");
  } catch (const io::gzip_error& error) {
    return truncatedError(path, "is truncated or damaged: gzip error " +
                                    std::to_string(error.error()) + " after " +
                                    std::to_string(sink.written()) + " decompressed bytes");
  } catch (const io::lzma_error& error) {
    return truncatedError(path, "is truncated or damaged: xz error " +
                                    std::to_string(error.error()) + " after " +
                                    std::to_string(sink.written()) + " decompressed bytes");
  } catch (const std::exception& error) {
    // Boost reports an input that ends early as a plain failure.
    return truncatedError(path, std::string("is truncated or damaged: ") + error.what() +
                                    " after " + std::to_string(sink.written()) +
                                    " decompressed bytes");
  }
  return llvm::Error::success();
}

} // namespace

llvm::StringRef toString(Compression compression) {
  switch (compression) {
  case Compression::None:
    return "none";
  case Compression::Zstd:
    return "zstd";
  case Compression::Xz:
    return "xz";
  case Compression::Gzip:
    return "gzip";
  case Compression::Lz4:
    return "lz4";
  }
  return "unknown";
}

Compression detectCompression(llvm::ArrayRef<uint8_t> first) {
  auto startsWith = [&](std::initializer_list<uint8_t> magic) {
    return first.size() >= magic.size() && std::equal(magic.begin(), magic.end(), first.begin());
  };
  if (startsWith({0x28, 0xb5, 0x2f, 0xfd}))
    return Compression::Zstd;
  // A zstd skippable frame (0x184D2A50..5F, little-endian) may come first.
  if (first.size() >= 4 && (first[0] & 0xf0) == 0x50 && first[1] == 0x2a && first[2] == 0x4d &&
      first[3] == 0x18)
    return Compression::Zstd;
  if (startsWith({0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}))
    return Compression::Xz;
  if (startsWith({0x1f, 0x8b}))
    return Compression::Gzip;
  if (startsWith({0x04, 0x22, 0x4d, 0x18}))
    return Compression::Lz4;
  return Compression::None;
}

llvm::Expected<OpenedFile> openPossiblyCompressed(llvm::StringRef path,
                                                  uint64_t max_decompressed_bytes) {
  FileDescriptor in(::open(path.str().c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0)
    return errnoError(path, "cannot open", errno);
  uint8_t magic[6] = {};
  ssize_t got = ::pread(in.get(), magic, sizeof magic, 0);
  if (got < 0)
    return errnoError(path, "cannot read", errno);
  OpenedFile opened;
  opened.compression = detectCompression(llvm::ArrayRef<uint8_t>(magic, static_cast<size_t>(got)));
  if (opened.compression == Compression::None) {
    auto buffer = llvm::MemoryBuffer::getOpenFile(in.get(), path, /*FileSize=*/-1,
                                                  /*RequiresNullTerminator=*/false);
    if (!buffer)
      return errorFor(path, buffer.getError().message());
    opened.buffer = std::move(*buffer);
    return opened;
  }

  auto temporary = createUnlinkedTemporaryFile(path);
  if (!temporary)
    return temporary.takeError();
  FileDescriptor out(*temporary);
  TemporarySink sink(out.get(), max_decompressed_bytes);
  llvm::Error error = llvm::Error::success();
  switch (opened.compression) {
  case Compression::Zstd:
    error = decompressZstd(path, in.get(), sink);
    break;
  case Compression::Lz4:
    error = decompressLz4(path, in.get(), sink);
    break;
  case Compression::Xz:
  case Compression::Gzip:
    error = decompressWithBoost(path, opened.compression, in.get(), sink);
    break;
  case Compression::None:
    break;
  }
  if (error)
    return error;
  if (sink.written() == 0)
    return errorFor(path, std::string("the ") + std::string(toString(opened.compression)) +
                              " stream holds no data");
  auto buffer = llvm::MemoryBuffer::getOpenFile(
      out.get(), path, static_cast<uint64_t>(sink.written()), /*RequiresNullTerminator=*/false);
  if (!buffer)
    return errorFor(path, "cannot map the decompressed copy: " + buffer.getError().message());
  opened.buffer = std::move(*buffer);
  return opened;
}

} // namespace procsnap::analyze
