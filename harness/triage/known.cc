#include "harness/triage/known.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace cpudiff {
namespace {

using Json = nlohmann::json;

std::vector<std::string> StringList(const Json& j, const std::string& where, const char* key) {
  if (!j.is_array() || j.empty()) {
    throw std::runtime_error(where + ": " + key + ": expected a non-empty array of engine names");
  }
  std::vector<std::string> v;
  for (const Json& e : j) {
    if (!e.is_string()) throw std::runtime_error(where + ": " + key + ": expected strings");
    v.push_back(e.get<std::string>());
  }
  return v;
}

void LoadFile(const std::filesystem::path& file, std::vector<KnownEntry>* out) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot read");
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::string where = file.string() + ":" + std::to_string(lineno);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      throw std::runtime_error(where + ": not a JSON object");
    }
    KnownEntry e;
    e.source = where;
    for (const auto& [key, value] : j.items()) {
      // Structured bindings captured by name: clang before 16 cannot capture them implicitly.
      auto text = [&, &key = key, &value = value]() {
        if (!value.is_string())
          throw std::runtime_error(where + ": " + key + ": expected a string");
        return value.get<std::string>();
      };
      if (key == "id") {
        e.id = text();
      } else if (key == "insn") {
        if (value.is_array()) {
          e.insn = StringList(value, where, "insn");
        } else {
          e.insn = {text()};
        }
      } else if (key == "field") {
        e.field = text();
      } else if (key == "reason") {
        e.reason = text();
      } else if (key == "example") {
        e.example = text();
      } else if (key == "engines") {
        e.engines = StringList(value, where, "engines");
      } else if (key == "against") {
        e.against = StringList(value, where, "against");
      } else {
        throw std::runtime_error(where + ": " + key + ": unknown field");
      }
    }
    if (e.id.empty()) throw std::runtime_error(where + ": id: required");
    if (e.reason.empty()) throw std::runtime_error(where + ": reason: required (say why)");
    if (e.engines.empty()) throw std::runtime_error(where + ": engines: required");
    for (const KnownEntry& other : *out) {
      if (other.id == e.id) {
        throw std::runtime_error(where + ": id: '" + e.id + "' is already used at " + other.source);
      }
    }
    out->push_back(std::move(e));
  }
}

bool Glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), FNM_NOESCAPE) == 0;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

bool SplitSignature(std::string_view signature, SignatureParts* out) {
  // The instruction form never holds '|'; split from the right so that a
  // field or engine name cannot shift the parts.
  size_t bar2 = signature.rfind('|');
  if (bar2 == std::string_view::npos || bar2 == 0) return false;
  size_t bar1 = signature.rfind('|', bar2 - 1);
  if (bar1 == std::string_view::npos) return false;
  std::string_view engines = signature.substr(bar2 + 1);
  size_t tilde = engines.find('~');
  if (tilde == std::string_view::npos) return false;
  out->insn = std::string(signature.substr(0, bar1));
  out->field = std::string(signature.substr(bar1 + 1, bar2 - bar1 - 1));
  out->engine_a = std::string(engines.substr(0, tilde));
  out->engine_b = std::string(engines.substr(tilde + 1));
  return true;
}

KnownList KnownList::Load(const std::string& path) {
  namespace fs = std::filesystem;
  KnownList list;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& d : fs::directory_iterator(path)) {
      if (d.path().extension() == ".jsonl") files.push_back(d.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) LoadFile(f, &list.entries_);
  } else if (fs::exists(path, ec)) {
    LoadFile(path, &list.entries_);
  } else {
    throw std::runtime_error(path + ": no such known-divergence file or directory");
  }
  return list;
}

const KnownEntry* KnownList::Match(std::string_view signature) const {
  SignatureParts p;
  if (!SplitSignature(signature, &p)) return nullptr;
  for (const KnownEntry& e : entries_) {
    bool insn = std::any_of(e.insn.begin(), e.insn.end(),
                            [&](const std::string& g) { return Glob(g, p.insn); });
    // A field pattern without a detail ("outcome", "flags") covers every
    // detail of that kind ("outcome.#GP->#PF", "flags.CF").
    const std::string_view kind = std::string_view(p.field).substr(0, p.field.find('.'));
    if (!insn || !(Glob(e.field, p.field) || Glob(e.field, std::string(kind)))) continue;
    // Signatures order their engines by name: either may be the one that
    // differs.
    bool ab = Contains(e.engines, p.engine_b) && Contains(e.against, p.engine_a);
    bool ba = Contains(e.engines, p.engine_a) && Contains(e.against, p.engine_b);
    if (ab || ba) return &e;
  }
  return nullptr;
}

}  // namespace cpudiff
