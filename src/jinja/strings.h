// strings.h — Python's str methods over Str, keeping template provenance:
// what a result keeps of its input keeps its origin; inserted text (a
// replacement, a separator) brings its own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "jinja/value.h"

namespace cllm::jinja {

// Strip is str.strip / lstrip / rstrip: whitespace, or any code point of `chars`.
Str Strip(const Str& s, const std::optional<std::string>& chars, bool left, bool right);
// Split is str.split(sep, maxsplit) (sep absent: runs of whitespace); from_right: rsplit.
std::vector<Str> Split(const Str& s, const std::optional<std::string>& sep, int64_t maxsplit, bool from_right);
// Replace is str.replace(old, new, count).
Str Replace(const Str& s, const std::string& old_text, const Str& new_text, int64_t count);
// Case mappings (ASCII letters; other bytes unchanged, so spans stay valid).
Str Upper(const Str& s);
Str Lower(const Str& s);
Str Capitalize(const Str& s);
// TitleFilter is jinja2's title filter (words begin after whitespace, - ( { [ <).
Str TitleFilter(const Str& s);
// TitleMethod is str.title (words are runs of letters).
Str TitleMethod(const Str& s);

}  // namespace cllm::jinja
