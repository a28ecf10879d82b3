// A temporary directory for one test, removed with everything in it when the object goes away.
#pragma once

#include "common/util/result.h"

#include <string>
#include <string_view>

namespace procsnap::test {

class TempDir final {
public:
  // Creates a fresh directory PREFIX-XXXXXX under $TMPDIR (or /tmp), mode 0700.
  static Result<TempDir> create(std::string_view prefix = "procsnap-test");

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir(); // removes the directory recursively (best effort)

  const std::string& path() const { return path_; }
  // path() + "/" + name; creates nothing.
  std::string file(std::string_view name) const;

private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  void remove();

  std::string path_; // empty once moved from
};

} // namespace procsnap::test
