// A small text table printer for the report writers: columns padded to
// their widest cell, two spaces apart, trailing blanks trimmed.
//
// Hand-written because none of the project's dependencies formats text
// tables; it is a few dozen lines.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace cpudiff {

class TextTable {
 public:
  TextTable() = default;
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  // Right-aligns a column (numbers).
  void AlignRight(size_t col);
  size_t rows() const { return rows_.size(); }

  // Prints the header (if any) and the rows, each line prefixed by `indent`.
  void Print(std::ostream& out, const std::string& indent = "  ") const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

}  // namespace cpudiff
