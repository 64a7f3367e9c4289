// SentencePiece-style tokenizer ("llama" vocabularies), behaving as llama.cpp's:
// spaces become ▁, raw text after BOS/special tokens gets a ▁ prefix, adjacent
// symbols merge by the highest vocabulary score (ties: leftmost first), and
// pieces with no token fall back to <0xNN> byte tokens.
#include <cstdio>
#include <map>
#include <queue>

#include "base/utf8.h"
#include "engine/tokenizer/tokenizer_impl.h"

namespace cllm::engine {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // ▁ U+2581

struct Symbol {
  int prev, next;
  const char* text;
  size_t n;
};

struct Bigram {
  int left, right;
  float score;
  size_t size;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  explicit SpmSession(const Vocab& v) : v_(v) {}

  void Tokenize(const std::string& text, std::vector<TokenId>& out) {
    // One symbol per UTF-8 character (a truncated sequence at the end is
    // clamped to what is there).
    for (size_t off = 0; off < text.size();) {
      size_t len = std::max<size_t>(1, Utf8SequenceLength(static_cast<uint8_t>(text[off])));
      len = std::min(len, text.size() - off);
      int idx = static_cast<int>(symbols_.size());
      symbols_.push_back({idx - 1, off + len == text.size() ? -1 : idx + 1, text.data() + off, len});
      off += len;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) TryAddBigram(i - 1, i);
    while (!queue_.empty()) {
      Bigram b = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[b.left];
      Symbol& right = symbols_[b.right];
      if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;  // stale
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = b.left;
      TryAddBigram(left.prev, b.left);
      TryAddBigram(b.left, left.next);
    }
    for (int i = 0; i >= 0 && i < static_cast<int>(symbols_.size()); i = symbols_[i].next) {
      Resegment(symbols_[i], out);
    }
  }

 private:
  void TryAddBigram(int left, int right) {
    if (left < 0 || right < 0) return;
    std::string text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
    TokenId id = v_.Find(text);
    if (id < 0) return;
    queue_.push({left, right, v_.scores[id], text.size()});
    rev_merge_[text] = {left, right};
  }

  void Resegment(const Symbol& s, std::vector<TokenId>& out) {
    std::string text(s.text, s.n);
    TokenId id = v_.Find(text);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    auto it = rev_merge_.find(text);
    if (it == rev_merge_.end()) {
      for (unsigned char c : text) out.push_back(ByteToken(c));
      return;
    }
    Resegment(symbols_[it->second.first], out);
    Resegment(symbols_[it->second.second], out);
  }

  TokenId ByteToken(unsigned char c) const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", c);
    TokenId id = v_.Find(buf);
    if (id >= 0) return id;
    id = v_.Find(std::string(1, static_cast<char>(c)));
    return id >= 0 ? id : v_.unk;
  }

  const Vocab& v_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
  std::map<std::string, std::pair<int, int>> rev_merge_;
};

}  // namespace

std::vector<TokenId> SpmTokenizer::EncodeFragments(const std::vector<Fragment>& fragments, bool add_special) const {
  std::vector<TokenId> out;
  if (add_special && v_.add_bos && v_.bos >= 0) out.push_back(v_.bos);
  bool prev_special = true;  // the first raw fragment gets the space prefix
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    std::string s;
    if (v_.add_space_prefix && prev_special) s.push_back(' ');  // (not `s = " "`: GCC 12 -Wrestrict false positive)
    s.append(f.text);
    std::string escaped;
    for (char c : s) {
      if (c == ' ') {
        escaped.append(kSpace);
      } else {
        escaped.push_back(c);
      }
    }
    SpmSession(v_).Tokenize(escaped, out);
    prev_special = false;
  }
  if (add_special && v_.add_eos && v_.eos >= 0) out.push_back(v_.eos);
  return out;
}

std::string SpmTokenizer::TokenToPiece(TokenId id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return "";
  const std::string& text = v_.tokens[id];
  switch (v_.types[id]) {
    case TokenType::kNormal: case TokenType::kUndefined: {
      std::string out;
      for (size_t i = 0; i < text.size();) {
        if (text.compare(i, kSpace.size(), kSpace) == 0) {
          out.push_back(' ');
          i += kSpace.size();
        } else {
          out.push_back(text[i++]);
        }
      }
      return out;
    }
    case TokenType::kByte: {
      unsigned v = 0;
      if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%02X>", &v) == 1) return std::string(1, static_cast<char>(v));
      return "";
    }
    case TokenType::kUserDefined: return text;
    case TokenType::kControl: case TokenType::kUnknown: return render_special ? text : "";
    case TokenType::kUnused: return "";
  }
  return "";
}

}  // namespace cllm::engine
