// dump: writes the raw bytes of a range to a file, like gdb's `dump memory FILE START END`.
// Bytes the snapshot does not hold are zeros in the file, and the report says how many and
// why (by page state). The file is sparse: sized first, then only stored, non-zero pages are
// written, so a 32 GiB reservation costs no disk. Memory holds secrets: the file is created
// 0600 under a temporary name, renamed into place when complete, and never overwritten
// without --force. Memory use is one block, whatever the range.
#include "analyze/cli/address_expression.h"
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "analyze/cli/source_runner.h"
#include "analyze/model/address_space.h"
#include "analyze/output/staged_output.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::opt<std::string> source_option(cl::Positional, cl::Required, cl::desc("<source>"),
                                   cl::sub(subcommand("dump")), cl::cat(commandCategory()));
cl::opt<std::string> what_option(
    cl::Positional, cl::Required,
    cl::desc("<what: 0xSTART-0xEND | 0xSTART+LEN | 0xREGION_START | MODULE:SECTION | SYMBOL>"),
    cl::sub(subcommand("dump")), cl::cat(commandCategory()));
cl::opt<std::string> output_option("o", cl::Required,
                                   cl::desc("Write the bytes to FILE ('-': standard output)"),
                                   cl::value_desc("FILE"), cl::sub(subcommand("dump")),
                                   cl::cat(commandCategory()));
cl::opt<bool> force_option("force", cl::desc("Overwrite FILE when it exists"),
                           cl::sub(subcommand("dump")), cl::cat(commandCategory()));

// Bytes read and written at a time: about one archive chunk.
constexpr size_t kDumpBlockBytes = size_t{1} << 20;
// Granule of the zero check: an all-zero page of a stored block is left as a hole.
constexpr size_t kHoleGranuleBytes = 4096;

// Where the bytes go: a staged file written sparsely (common/util/output_file.h: mode 0600, renamed
// into place when complete, so a failed dump leaves nothing), or standard output written in
// order (holes become written zeros, since a pipe cannot skip).
class DumpOutput final {
public:
  static llvm::Expected<std::unique_ptr<DumpOutput>> open(const std::string& path, bool force,
                                                          uint64_t size) {
    std::unique_ptr<DumpOutput> output(new DumpOutput());
    output->size_ = size;
    if (path == "-") {
      if (isatty(STDOUT_FILENO))
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "refusing to write raw memory to a terminal; use -o FILE");
      return output;
    }
    llvm::Expected<std::unique_ptr<OutputFile>> file = createStagedOutput(path, force);
    if (!file)
      return file.takeError();
    output->file_ = std::move(*file);
    if (llvm::Error error = toLlvmError(output->file_->resize(size)))
      return error;
    return output;
  }

  // Writes bytes at offset (from the range start). Offsets only grow.
  llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t> bytes) {
    if (!file_) {
      if (llvm::Error error = writeZerosTo(offset))
        return error;
      return writeAll(bytes);
    }
    // Pages that are all zero stay holes.
    for (size_t at = 0; at < bytes.size();) {
      size_t granule = std::min(kHoleGranuleBytes, bytes.size() - at);
      bool zero = std::all_of(bytes.begin() + at, bytes.begin() + at + granule,
                              [](uint8_t byte) { return byte == 0; });
      if (!zero) {
        const llvm::ArrayRef<uint8_t> piece = bytes.slice(at, granule);
        if (llvm::Error error =
                toLlvmError(file_->write(offset + at, {piece.data(), piece.size()})))
          return error;
      }
      at += granule;
    }
    return llvm::Error::success();
  }

  // Completes the output: the file appears under its name.
  llvm::Error commit() {
    if (!file_)
      return writeZerosTo(size_);
    return toLlvmError(file_->commit());
  }

private:
  DumpOutput() = default;

  llvm::Error writeAll(llvm::ArrayRef<uint8_t> bytes) {
    while (!bytes.empty()) {
      ssize_t written = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        return toLlvmError(describeWriteError(errno, "standard output"));
      bytes = bytes.drop_front(static_cast<size_t>(written));
      position_ += static_cast<uint64_t>(written);
    }
    return llvm::Error::success();
  }

  llvm::Error writeZerosTo(uint64_t offset) {
    static const std::vector<uint8_t> zeros(kDumpBlockBytes, 0);
    while (position_ < offset) {
      size_t size = static_cast<size_t>(std::min<uint64_t>(zeros.size(), offset - position_));
      if (llvm::Error error = writeAll(llvm::ArrayRef<uint8_t>(zeros.data(), size)))
        return error;
    }
    return llvm::Error::success();
  }

  std::unique_ptr<OutputFile> file_; // null: standard output
  uint64_t size_ = 0;
  uint64_t position_ = 0; // standard output: bytes written so far
};

// Why the bytes of [start, end) that are not written from the snapshot are zeros, from the
// regions' page states. "unmapped" counts bytes outside every region; "unavailable" counts
// bytes the page states call stored but the snapshot could not give (a salvaged archive).
std::map<std::string, uint64_t> accountNotStored(const Snapshot& snapshot, uint64_t start,
                                                 uint64_t end, uint64_t bytes_written) {
  std::map<std::string, uint64_t> not_stored;
  uint64_t in_regions = 0;
  uint64_t stored_by_state = 0;
  for (const RegionRecord& region : snapshot.metadata().regions) {
    if (region.map().end <= start || region.map().start >= end)
      continue;
    for (const PageRun& run : region.pages) {
      uint64_t from = std::max(run.start, start);
      uint64_t to = std::min(run.end, end);
      if (from >= to)
        continue;
      in_regions += to - from;
      if (holdsBytes(run.state)) // stored, or read from the module file (cores)
        stored_by_state += to - from;
      else
        not_stored[std::string(toString(run.state))] += to - from;
    }
  }
  if (end - start > in_regions)
    not_stored["unmapped"] += end - start - in_regions;
  if (stored_by_state > bytes_written)
    not_stored["unavailable"] += stored_by_state - bytes_written;
  return not_stored;
}

llvm::Error dump(const CommonOptions& options, Printer& printer) {
  llvm::Expected<AddressExpression> what = parseAddressExpression(what_option);
  if (!what)
    return what.takeError();
  llvm::Expected<OpenedSource> source =
      openSource(source_option, options, printer, needsAddressSpace(*what));
  if (!source)
    return source.takeError();
  const Snapshot& snapshot = *source->snapshot;
  llvm::Expected<ResolvedRange> resolved = resolveAddressExpression(
      *what, snapshot, source->space ? &*source->space : nullptr, LoneAddress::RegionStart);
  if (!resolved)
    return resolved.takeError();
  for (const std::string& note : resolved->notes)
    printer.warn(note);
  if (!resolved->has_extent)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "'%s' has no size; give a range 0xSTART-0xEND or 0xSTART+LEN",
                                   what_option.getValue().c_str());
  const uint64_t start = resolved->range.start;
  const uint64_t end = resolved->range.end;

  llvm::Expected<std::unique_ptr<DumpOutput>> output =
      DumpOutput::open(output_option, force_option, end - start);
  if (!output)
    return output.takeError();

  std::vector<uint8_t> block(kDumpBlockBytes);
  uint64_t bytes_written = 0;
  for (const StoredExtent& extent : snapshot.storedExtents(start, end)) {
    for (uint64_t address = extent.start; address < extent.end;) {
      size_t size = static_cast<size_t>(std::min<uint64_t>(block.size(), extent.end - address));
      llvm::MutableArrayRef<uint8_t> bytes(block.data(), size);
      llvm::Expected<ReadResult> read = snapshot.read(address, bytes);
      if (!read) {
        if (!options.salvage)
          return llvm::createStringError(
              llvm::inconvertibleErrorCode(), "cannot read %s-%s: %s (--salvage writes zeros)",
              hexString(address).c_str(), hexString(address + size).c_str(),
              llvm::toString(read.takeError()).c_str());
        printer.warn("cannot read " + hexString(address) + "-" + hexString(address + size) + ": " +
                     llvm::toString(read.takeError()) + "; written as zeros");
      } else {
        if (llvm::Error error = (*output)->write(address - start, bytes))
          return error;
        bytes_written += read->bytes_stored;
      }
      address += size;
    }
  }
  if (llvm::Error error = (*output)->commit())
    return error;

  std::map<std::string, uint64_t> not_stored =
      accountNotStored(snapshot, start, end, bytes_written);
  uint64_t zero_filled = end - start - bytes_written;
  if (auto unmapped = not_stored.find("unmapped"); unmapped != not_stored.end())
    printer.warn(std::to_string(unmapped->second) +
                 " bytes of the range are outside every region of the snapshot (written as "
                 "zeros; gdb would refuse them)");

  DictScope report(printer, "dump");
  printer.printString("source", source_option);
  printer.printString("file", output_option);
  printer.printString("what", resolved->description);
  printer.printHex("start", start);
  printer.printHex("end", end);
  printer.printUnsigned("size", end - start);
  printer.printUnsigned("bytes_stored", bytes_written);
  printer.printUnsigned("bytes_zero_filled", zero_filled);
  DictScope reasons(printer, "not_stored");
  for (const auto& [reason, bytes] : not_stored)
    printer.printUnsigned(reason, bytes);
  return llvm::Error::success();
}

} // namespace

int runDump(const CommonOptions& options) {
  // The report goes to stderr when the bytes go to stdout.
  llvm::raw_ostream& report_stream = output_option == "-" ? llvm::errs() : llvm::outs();
  std::unique_ptr<Printer> printer = Printer::create(report_stream, options.format());
  llvm::Error error = dump(options, *printer);
  printer->finish();
  if (error)
    return reportError(std::move(error));
  return kExitOk;
}

} // namespace procsnap::analyze
