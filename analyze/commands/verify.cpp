// verify: checks every block checksum of an archive and every chunk's content hash
// (ArchiveReader::verify) and reports what is intact and what is damaged. Exit 0 when all is
// intact, 1 on damage, 2 when the file cannot be checked at all. It opens the archive by
// scanning when it must (damage is what it is for), and works on the archive directly rather
// than through Snapshot: only archives carry checksums.
#include "analyze/cli/command_table.h"
#include "analyze/cli/common_options.h"
#include "analyze/cli/error_report.h"
#include "analyze/cli/exit_codes.h"
#include "common/archive/reader.h"
#include "common/util/terminal_text.h"

#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace procsnap::analyze {

namespace {

namespace cl = llvm::cl;

cl::opt<std::string> source_option(cl::Positional, cl::Required, cl::desc("<archive>"),
                                   cl::sub(subcommand("verify")), cl::cat(commandCategory()));

// How often the progress line on a terminal is redrawn.
constexpr std::chrono::milliseconds kProgressRedraw{200};

// Recognizes sources that are snapshots but not archives, to say so instead of "not a
// procsnap archive": ELF cores, plain or compressed.
const char* nonArchiveKind(const std::string& path) {
  unsigned char magic[18] = {};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return nullptr; // ArchiveReader::open reports why
  ssize_t got = ::read(fd, magic, sizeof magic);
  ::close(fd);
  if (got < 4)
    return nullptr;
  if (std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) == 0) {
    constexpr uint16_t kElfTypeCore = 4; // ET_CORE, little-endian e_type at offset 16
    bool core = got >= 18 && magic[16] == kElfTypeCore && magic[17] == 0;
    return core ? "an ELF core file" : "an ELF file, not a snapshot";
  }
  if (std::memcmp(magic, "\x28\xb5\x2f\xfd", 4) == 0)
    return "a zstd-compressed file";
  if (got >= 6 && std::memcmp(magic, "\xfd\x37\x7a\x58\x5a\x00", 6) == 0)
    return "an xz-compressed file";
  if (std::memcmp(magic, "\x04\x22\x4d\x18", 4) == 0)
    return "an lz4-compressed file";
  if (magic[0] == 0x1f && magic[1] == 0x8b)
    return "a gzip-compressed file";
  return nullptr;
}

// "1 damaged block, trailer missing", for the one-line verdict on stderr.
std::string damageSummary(const VerifyReport& report) {
  std::string text = std::to_string(report.blocks_damaged) + " damaged block" +
                     (report.blocks_damaged == 1 ? "" : "s");
  if (!report.trailer_ok)
    text += ", trailer missing or damaged";
  else if (!report.index_ok)
    text += ", index damaged";
  return text;
}

std::string mebibytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// A progress line on stderr, redrawn in place, only when stderr is a terminal.
class ProgressLine final {
public:
  ProgressLine() : enabled_(isatty(STDERR_FILENO) != 0) {}
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(uint64_t done, uint64_t total) {
    if (!enabled_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < kProgressRedraw)
      return;
    last_ = now;
    drawn_ = true;
    unsigned percent = total == 0 ? 100 : static_cast<unsigned>(done * 100 / total);
    llvm::errs() << "\rverifying: " << percent << "% (" << mebibytes(done) << " of "
                 << mebibytes(total) << ")\x1b[K";
    llvm::errs().flush();
  }
  void clear() {
    if (!drawn_)
      return;
    llvm::errs() << "\r\x1b[K";
    llvm::errs().flush();
    drawn_ = false;
  }

private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

} // namespace

int runVerify(const CommonOptions& options) {
  const std::string& path = source_option;
  if (const char* kind = nonArchiveKind(path))
    return reportError("cannot verify '" + path + "': it is " + kind +
                       ", and only procsnap archives carry checksums");
  auto reader = ArchiveReader::open(path, OpenMode::Salvage);
  if (!reader.ok())
    return reportError(toLlvmError(reader.error()));

  VerifyReport report;
  {
    ProgressLine progress;
    report = (*reader)->verify(
        [&progress](uint64_t done, uint64_t total) { progress.update(done, total); });
  }

  std::unique_ptr<Printer> printer = Printer::create(llvm::outs(), options.format());
  {
    DictScope verify(*printer, "verify");
    printer->printString("archive", path);
    printer->printString("result", report.ok() ? "intact" : "damaged");
    printer->printUnsigned("format_version", report.format_version);
    printer->printUnsigned("file_size", report.file_size);
    printer->printBool("header_ok", report.header_ok);
    printer->printBool("trailer_ok", report.trailer_ok);
    printer->printBool("index_ok", report.index_ok);
    printer->printUnsigned("blocks_intact", report.blocks_intact);
    printer->printUnsigned("blocks_damaged", report.blocks_damaged);
    printer->printUnsigned("chunks_checked", report.chunks_checked);
    printer->printUnsigned("intact_prefix", report.intact_prefix);
    Printer::Table damaged(
        {{"OFFSET", "offset", Printer::Column::Type::Hex, Printer::Column::Align::Right},
         {"TYPE", "type"},
         {"SIZE", "size", Printer::Column::Type::Unsigned, Printer::Column::Align::Right},
         {"PROBLEM", "problem"}});
    for (const BlockReport& block : report.damaged)
      damaged.addRow({block.offset, block.type_name.empty() ? Printer::Cell{} : block.type_name,
                      block.size, block.problem});
    if (printer->isJson() || !damaged.empty())
      printer->printTable("damaged", damaged);
  }
  printer->finish();
  if (!report.ok()) {
    llvm::errs() << "procsnap-analyze: " << escapeForTerminal(path) << ": damaged ("
                 << damageSummary(report) << ")\n";
    return kExitFindings;
  }
  return kExitOk;
}

} // namespace procsnap::analyze
