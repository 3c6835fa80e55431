#include "reports/table.h"

#include <algorithm>
#include <ostream>

namespace cpudiff {

void TextTable::AlignRight(size_t col) {
  if (right_.size() <= col) right_.resize(col + 1, false);
  right_[col] = true;
}

void TextTable::Print(std::ostream& out, const std::string& indent) const {
  std::vector<size_t> width;
  auto measure = [&](const std::vector<std::string>& row) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);

  auto print = [&](const std::vector<std::string>& row) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      size_t pad = width[i] - row[i].size();
      bool right = i < right_.size() && right_[i];
      if (right) line.append(pad, ' ');
      line += row[i];
      if (!right) line.append(pad, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  if (!header_.empty()) print(header_);
  for (const auto& r : rows_) print(r);
}

}  // namespace cpudiff
