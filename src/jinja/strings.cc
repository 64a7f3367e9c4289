#include "jinja/strings.h"

#include <algorithm>

#include "jinja/error.h"
#include "jinja/text.h"

namespace cllm::jinja {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToUpper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ToLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// CodePointLen: the byte length of the code point starting at s[pos].
size_t CodePointLen(std::string_view s, size_t pos) {
  size_t n = 1;
  while (pos + n < s.size() && (static_cast<unsigned char>(s[pos + n]) & 0xC0) == 0x80) ++n;
  return n;
}

bool InChars(std::string_view chars, std::string_view cp) {
  for (size_t k = 0; k < chars.size();) {
    size_t n = CodePointLen(chars, k);
    if (chars.substr(k, n) == cp) return true;
    k += n;
  }
  return false;
}

Str MapBytes(const Str& s, char (*f)(char)) {
  Str out = s;
  for (char& c : out.s) c = f(c);
  return out;
}

}  // namespace

Str Strip(const Str& s, const std::optional<std::string>& chars, bool left, bool right) {
  std::string_view v = s.s;
  size_t b = 0, e = v.size();
  if (!chars) {
    if (left) b = LeadingSpace(v);
    if (right && b < e) e -= TrailingSpace(v.substr(b));
  } else {
    if (left) {
      while (b < e) {
        size_t n = CodePointLen(v, b);
        if (!InChars(*chars, v.substr(b, n))) break;
        b += n;
      }
    }
    if (right) {
      while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(v[start]) & 0xC0) == 0x80) --start;
        if (!InChars(*chars, v.substr(start, e - start))) break;
        e = start;
      }
    }
  }
  return s.Slice(b, e);
}

std::vector<Str> Split(const Str& s, const std::optional<std::string>& sep, int64_t maxsplit, bool from_right) {
  std::vector<Str> out;
  std::string_view v = s.s;
  if (sep && sep->empty()) Fail(JinjaErrc::kRender, "empty separator");
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (!sep) {
    // Runs of whitespace; empty pieces never appear.
    std::vector<std::pair<size_t, size_t>> words;
    size_t k = 0;
    while (k < v.size()) {
      size_t n = SpaceAt(v, k);
      if (n) {
        k += n;
        continue;
      }
      size_t b = k;
      while (k < v.size() && SpaceAt(v, k) == 0) k += CodePointLen(v, k);
      words.emplace_back(b, k);
    }
    if (words.empty()) return out;
    int64_t nw = static_cast<int64_t>(words.size());
    if (nw - 1 <= maxsplit) {
      for (auto [b, e] : words) out.push_back(s.Slice(b, e));
      return out;
    }
    if (!from_right) {
      for (int64_t w = 0; w < maxsplit; ++w) out.push_back(s.Slice(words[w].first, words[w].second));
      // The rest, from the next word to the end with trailing space stripped.
      size_t b = words[static_cast<size_t>(maxsplit)].first;
      Str rest = s.Slice(b, v.size());
      out.push_back(Strip(rest, std::nullopt, false, true));
    } else {
      size_t first_kept = static_cast<size_t>(nw - maxsplit);
      Str head = s.Slice(0, words[first_kept - 1].second);
      out.push_back(Strip(head, std::nullopt, true, false));
      for (size_t w = first_kept; w < words.size(); ++w) out.push_back(s.Slice(words[w].first, words[w].second));
    }
    return out;
  }
  std::vector<size_t> cuts;  // positions of separators
  for (size_t p = v.find(*sep); p != std::string_view::npos; p = v.find(*sep, p + sep->size())) cuts.push_back(p);
  if (static_cast<int64_t>(cuts.size()) > maxsplit) {
    if (from_right) {
      // rsplit matches from the right: recompute without overlap from the end.
      std::vector<size_t> r;
      for (size_t e = v.size(); static_cast<int64_t>(r.size()) < maxsplit;) {
        if (e < sep->size()) break;
        size_t p = v.rfind(*sep, e - sep->size());
        if (p == std::string_view::npos) break;
        r.push_back(p);
        e = p;
      }
      std::reverse(r.begin(), r.end());
      cuts = r;
    } else {
      cuts.resize(static_cast<size_t>(maxsplit));
    }
  }
  size_t b = 0;
  for (size_t p : cuts) {
    out.push_back(s.Slice(b, p));
    b = p + sep->size();
  }
  out.push_back(s.Slice(b, v.size()));
  return out;
}

Str Replace(const Str& s, const std::string& old_text, const Str& new_text, int64_t count) {
  if (count < 0) count = INT64_MAX;
  Str out;
  std::string_view v = s.s;
  if (old_text.empty()) {
    // Python inserts `new` between every code point and at both ends.
    size_t k = 0;
    int64_t done = 0;
    while (k <= v.size()) {
      if (done < count) {
        out.Append(new_text);
        ++done;
      }
      if (k == v.size()) break;
      size_t n = CodePointLen(v, k);
      out.Append(s.Slice(k, k + n));
      k += n;
    }
    return out;
  }
  size_t b = 0;
  int64_t done = 0;
  for (size_t p = v.find(old_text); p != std::string_view::npos && done < count; p = v.find(old_text, b)) {
    out.Append(s.Slice(b, p));
    out.Append(new_text);
    b = p + old_text.size();
    ++done;
  }
  out.Append(s.Slice(b, v.size()));
  return out;
}

Str Upper(const Str& s) { return MapBytes(s, ToUpper); }
Str Lower(const Str& s) { return MapBytes(s, ToLower); }

Str Capitalize(const Str& s) {
  Str out = Lower(s);
  if (!out.s.empty()) out.s[0] = ToUpper(out.s[0]);
  return out;
}

Str TitleFilter(const Str& s) {
  Str out = s;
  bool word_start = true;
  for (char& c : out.s) {
    bool boundary = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '-' ||
                    c == '(' || c == '{' || c == '[' || c == '<';
    if (boundary) {
      word_start = true;
      continue;
    }
    c = word_start ? ToUpper(c) : ToLower(c);
    word_start = false;
  }
  return out;
}

Str TitleMethod(const Str& s) {
  Str out = s;
  bool prev_letter = false;
  for (char& c : out.s) {
    bool letter = IsAsciiLetter(c);
    if (letter) c = prev_letter ? ToLower(c) : ToUpper(c);
    prev_letter = letter;
  }
  return out;
}

}  // namespace cllm::jinja
