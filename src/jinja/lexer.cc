#include "jinja/lexer.h"

#include <algorithm>
#include <cstring>

#include "jinja/text.h"

namespace cllm::jinja {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, size_t max_tokens) : max_tokens_(max_tokens) {
    // Newlines normalised as jinja2 does before lexing.
    src_.reserve(source.size());
    for (size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        src_ += '\n';
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
      } else {
        src_ += source[k];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t k = 0; k < src_.size(); ++k) {
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      size_t tag = FindTag(pos_);
      if (tag == std::string::npos) {
        EmitText(src_.substr(pos_));
        break;
      }
      char kind = src_[tag + 1];
      size_t open_end = tag + 2;
      char sign = open_end < src_.size() && (src_[open_end] == '-' || src_[open_end] == '+') ? src_[open_end] : 0;
      std::string text = src_.substr(pos_, tag - pos_);
      if (sign == '-') {
        text.resize(text.size() - TrailingSpace(text));
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: only whitespace between the line start and the tag.
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting_) {
          std::string_view tail(text.data() + l_pos, text.size() - l_pos);
          if (!tail.empty() && LeadingSpace(tail) == tail.size()) text.resize(l_pos);
        }
      }
      EmitText(std::move(text));
      pos_ = open_end + (sign != 0 ? 1 : 0);
      if (kind == '#') {
        Comment(tag);
      } else if (kind == '%' && Raw(tag)) {
        continue;
      } else {
        Tag(kind, tag);
      }
    }
    Push({Tok::kEof, "", 0, 0, At(src_.size())});
    return std::move(out_);
  }

 private:
  Pos At(size_t p) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), p);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return Pos{static_cast<int>(line), static_cast<int>(p - line_starts_[line - 1] + 1)};
  }

  size_t FindTag(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    }
    return std::string::npos;
  }

  void Push(Token t) {
    if (out_.size() >= max_tokens_) FailAt(JinjaErrc::kLimit, t.pos, "template has too many tokens");
    out_.push_back(std::move(t));
  }

  void EmitText(std::string text) {
    if (!text.empty()) Push({Tok::kText, std::move(text), 0, 0, At(pos_)});
  }

  void SkipSpace() {
    for (size_t n; (n = SpaceAt(src_, pos_)) != 0;) pos_ += n;
  }

  bool StartsWith(std::string_view s) const { return src_.compare(pos_, s.size(), s) == 0; }

  // Ends a block or comment tag at pos_ (just past its closing characters):
  // `strip` after "-%}", trim_blocks' one newline after a plain "%}".
  void AfterBlockEnd(char sign) {
    if (sign == '-') {
      SkipSpace();
    } else if (sign != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  }

  void Comment(size_t tag) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) FailAt(JinjaErrc::kSyntax, At(tag), "missing end of comment tag");
    char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    pos_ = end + 2;
    AfterBlockEnd(sign);
  }

  // Raw handles {% raw %}...{% endraw %}: its body is text, untouched.
  bool Raw(size_t tag) {
    size_t p = pos_;
    while (p < src_.size() && SpaceAt(src_, p)) p += SpaceAt(src_, p);
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && IsNameChar(src_[p + 3]))) return false;
    p += 3;
    while (p < src_.size() && SpaceAt(src_, p)) p += SpaceAt(src_, p);
    char sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) return false;
    pos_ = p + 2;
    if (sign == '-') SkipSpace();
    // Find {%-? endraw -?%}.
    for (size_t k = src_.find("{%", pos_); k != std::string::npos; k = src_.find("{%", k + 2)) {
      size_t q = k + 2;
      char lsign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : 0;
      if (lsign) ++q;
      while (q < src_.size() && SpaceAt(src_, q)) q += SpaceAt(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && SpaceAt(src_, q)) q += SpaceAt(src_, q);
      char rsign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) rsign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string body = src_.substr(pos_, k - pos_);
      if (lsign == '-') body.resize(body.size() - TrailingSpace(body));
      EmitText(std::move(body));
      pos_ = q + 2;
      AfterBlockEnd(rsign);
      return true;
    }
    FailAt(JinjaErrc::kSyntax, At(tag), "missing {% endraw %}");
  }

  void Tag(char kind, size_t tag) {
    Push({kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", 0, 0, At(tag)});
    int depth = 0;  // open brackets: "}}" inside them closes a dict, not the tag
    for (;;) {
      SkipSpace();
      if (pos_ >= src_.size()) FailAt(JinjaErrc::kSyntax, At(tag), "unexpected end of template inside a tag");
      Pos at = At(pos_);
      if (depth == 0) {
        if (kind == '{' && (StartsWith("-}}") || StartsWith("}}"))) {
          bool strip = src_[pos_] == '-';
          pos_ += strip ? 3 : 2;
          if (strip) SkipSpace();
          line_starting_ = src_[pos_ - 1] == '\n';
          Push({Tok::kVarEnd, "", 0, 0, at});
          return;
        }
        if (kind == '%' && (StartsWith("-%}") || StartsWith("+%}") || StartsWith("%}"))) {
          char sign = src_[pos_] == '%' ? 0 : src_[pos_];
          pos_ += sign ? 3 : 2;
          AfterBlockEnd(sign);
          Push({Tok::kBlockEnd, "", 0, 0, at});
          return;
        }
      }
      char c = src_[pos_];
      if (IsNameStart(c)) {
        size_t b = pos_;
        while (pos_ < src_.size() && IsNameChar(src_[pos_])) ++pos_;
        Push({Tok::kName, src_.substr(b, pos_ - b), 0, 0, at});
      } else if (IsDigit(c)) {
        Number(at);
      } else if (c == '\'' || c == '"') {
        String(at);
      } else {
        static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                     ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";"};
        const char* op = nullptr;
        for (const char* o : kOps) {
          if (StartsWith(o)) {
            op = o;
            break;
          }
        }
        if (op == nullptr) FailAt(JinjaErrc::kSyntax, at, std::string("unexpected character '") + c + "'");
        if (*op == '(' || *op == '[' || *op == '{') ++depth;
        if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) --depth;
        pos_ += std::strlen(op);
        Push({Tok::kOp, op, 0, 0, at});
      }
    }
  }

  void Number(Pos at) {
    std::string digits;
    auto run = [&] {
      while (pos_ < src_.size() && (IsDigit(src_[pos_]) || (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
                                                              IsDigit(src_[pos_ + 1])))) {
        if (src_[pos_] != '_') digits += src_[pos_];
        ++pos_;
      }
    };
    run();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && IsDigit(src_[pos_ + 1])) {
      is_float = true;
      digits += src_[pos_++];
      run();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_;
      std::string save_digits = digits;
      digits += 'e';
      ++pos_;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) digits += src_[pos_++];
      if (pos_ < src_.size() && IsDigit(src_[pos_])) {
        is_float = true;
        run();
      } else {
        pos_ = save;
        digits = save_digits;
      }
    }
    if (is_float) {
      Push({Tok::kFloat, digits, 0, std::strtod(digits.c_str(), nullptr), at});
      return;
    }
    if (digits.size() > 18) FailAt(JinjaErrc::kSyntax, at, "integer literal too large");
    Push({Tok::kInt, digits, std::stoll(digits), 0, at});
  }

  // String reads a quoted literal with Python's escapes.
  void String(Pos at) {
    char quote = src_[pos_++];
    std::string out;
    for (;;) {
      if (pos_ >= src_.size()) FailAt(JinjaErrc::kSyntax, at, "unterminated string literal");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) FailAt(JinjaErrc::kSyntax, at, "unterminated string literal");
      char e = src_[pos_++];
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            int h = pos_ < src_.size() ? HexValue(src_[pos_]) : -1;
            if (h < 0) FailAt(JinjaErrc::kSyntax, at, std::string("truncated \\") + e + " escape");
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++pos_;
          }
          if (cp > 0x10ffff) FailAt(JinjaErrc::kSyntax, at, "escape outside Unicode");
          AppendUtf8(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
            }
            AppendUtf8(out, cp);
          } else {
            out += '\\';  // unknown escapes stay as written
            out += e;
          }
      }
    }
    Push({Tok::kString, std::move(out), 0, 0, at});
  }

  std::string src_;
  size_t pos_ = 0;
  size_t max_tokens_;
  bool line_starting_ = true;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> Lex(std::string_view source, size_t max_tokens) { return Lexer(source, max_tokens).Run(); }

}  // namespace cllm::jinja
