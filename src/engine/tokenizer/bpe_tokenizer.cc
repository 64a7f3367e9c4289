// Byte-level BPE ("gpt2" vocabularies, e.g. Qwen2/Qwen3). Text is split by the
// pre-tokenizer regex (PCRE2, Unicode properties), each piece's bytes are
// mapped to printable characters with GPT-2's byte↔unicode table, and
// adjacent symbols merge by the lowest merge rank (ties: leftmost first).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <queue>

#include "base/utf8.h"
#include "engine/tokenizer/tokenizer_impl.h"

namespace cllm::engine {
namespace {

// Pre-tokenizer patterns by tokenizer.ggml.pre (Hugging Face tokenizer.json
// definitions). qwen2 splits digits one by one (\p{N}); llama3 groups up to three.
struct PreTokenizer {
  const char* name;
  const char* pattern;
  bool ignore_merges = false;  // whole-piece vocabulary lookup first (Llama 3)
};
constexpr PreTokenizer kPreTokenizers[] = {
    {"qwen2",
     R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     false},
    {"llama-bpe",
     R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     true},
    {"default", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false},
    {"gpt2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false},
};

std::string CodepointToUtf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
  return s;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 onwards in byte order.
struct ByteMap {
  std::array<std::string, 256> to_text;
  std::unordered_map<std::string, uint8_t> to_byte;
  ByteMap() {
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      uint32_t cp = printable ? b : 256 + extra++;
      to_text[b] = CodepointToUtf8(cp);
      to_byte[to_text[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& Bytes256() {
  static const ByteMap m;
  return m;
}

struct Symbol {
  int prev, next;
  size_t off, n;  // into the mapped word
};

struct Bigram {
  int left, right;
  int rank;
  size_t size;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

TokenizerResult<std::unique_ptr<Tokenizer>> BpeTokenizer::Create(Vocab v) {
  const char* pattern = nullptr;
  bool ignore_merges = false;
  for (const auto& p : kPreTokenizers) {
    if (v.pre == p.name) {
      pattern = p.pattern;
      ignore_merges = p.ignore_merges;
    }
  }
  if (pattern == nullptr) {
    return MakeError(TokenizerErrc::kUnsupportedModel, "BPE pre-tokenizer '" + v.pre +
                                                           "' (supported: qwen2, llama-bpe, default, gpt2)");
  }
  int err = 0;
  PCRE2_SIZE err_off = 0;
  // MATCH_INVALID_UTF: invalid UTF-8 in a prompt never matches and becomes
  // its own piece instead of failing the whole match.
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
  if (re == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return MakeError(TokenizerErrc::kRegex, std::string("pre-tokenizer regex: ") + reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // best effort; the interpreter is the fallback
  return std::unique_ptr<Tokenizer>(new BpeTokenizer(std::move(v), re, ignore_merges));
}

BpeTokenizer::~BpeTokenizer() { pcre2_code_free(re_); }

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<TokenId>& out) const {
  const ByteMap& bm = Bytes256();
  std::string mapped;
  for (unsigned char c : word) mapped += bm.to_text[c];
  if (ignore_merges_) {
    TokenId whole = v_.Find(mapped);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol> sym;
  for (size_t off = 0; off < mapped.size();) {
    size_t len = Utf8SequenceLength(static_cast<uint8_t>(mapped[off]));
    int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, off + len == mapped.size() ? -1 : idx + 1, off, len});
    off += len;
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    std::string key = mapped.substr(sym[l].off, sym[l].n);
    key += ' ';
    key.append(mapped, sym[r].off, sym[r].n);
    auto it = v_.merge_rank.find(key);
    if (it == v_.merge_rank.end()) return;
    queue.push({l, r, it->second, sym[l].n + sym[r].n});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = 0; i >= 0 && i < static_cast<int>(sym.size()); i = sym[i].next) {
    std::string_view piece(mapped.data() + sym[i].off, sym[i].n);
    TokenId id = v_.Find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // No token for the merged piece: fall back to one token per mapped byte.
    for (size_t off = 0; off < piece.size();) {
      size_t len = Utf8SequenceLength(static_cast<uint8_t>(piece[off]));
      TokenId b = v_.Find(piece.substr(off, len));
      if (b >= 0) out.push_back(b);
      off += len;
    }
  }
}

std::vector<TokenId> BpeTokenizer::EncodeFragments(const std::vector<Fragment>& fragments, bool add_special) const {
  std::vector<TokenId> out;
  if (add_special && v_.add_bos && v_.bos >= 0) out.push_back(v_.bos);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re_, nullptr);
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(f.text.data());
    size_t pos = 0;
    while (pos < f.text.size()) {
      int rc = pcre2_match(re_, subject, f.text.size(), pos, 0, md, nullptr);
      if (rc < 0) {  // no further match: the rest is one piece
        EncodeWord(f.text.substr(pos), out);
        break;
      }
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t start = ov[0], end = ov[1];
      if (start > pos) EncodeWord(f.text.substr(pos, start - pos), out);  // unmatched gap
      if (end == start) {  // empty match: never loop in place
        end = start + 1;
      }
      EncodeWord(f.text.substr(start, end - start), out);
      pos = end;
    }
  }
  pcre2_match_data_free(md);
  if (add_special && v_.add_eos && v_.eos >= 0) out.push_back(v_.eos);
  return out;
}

std::string BpeTokenizer::TokenToPiece(TokenId id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return "";
  const std::string& text = v_.tokens[id];
  switch (v_.types[id]) {
    case TokenType::kNormal: case TokenType::kUndefined: {
      const ByteMap& bm = Bytes256();
      std::string out;
      for (size_t off = 0; off < text.size();) {
        size_t len = std::max<size_t>(1, Utf8SequenceLength(static_cast<uint8_t>(text[off])));
        auto it = bm.to_byte.find(text.substr(off, len));
        if (it != bm.to_byte.end()) {
          out.push_back(static_cast<char>(it->second));
        } else {
          out.append(text, off, len);
        }
        off += len;
      }
      return out;
    }
    case TokenType::kUserDefined: return text;
    case TokenType::kControl: case TokenType::kUnknown: return render_special ? text : "";
    case TokenType::kByte: case TokenType::kUnused: return "";
  }
  return "";
}

}  // namespace cllm::engine
