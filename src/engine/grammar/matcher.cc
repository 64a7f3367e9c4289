#include "engine/grammar/matcher.h"

#include <algorithm>
#include <cstring>

#include "engine/grammar/regex.h"

namespace cllm::engine::grammar {

bool Frame::operator==(const Frame& o) const {
  return node == o.node && mask == o.mask && val == o.val && count == o.count && pos == o.pos && idx == o.idx &&
         phase == o.phase && ws == o.ws && aux == o.aux && lo == o.lo && hi == o.hi;
}

namespace {

using Stack = std::vector<Frame>;
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

// Phases of the frames, per node kind.
enum ObjectPhase : uint8_t { kObjOpen, kObjAfterOpen, kObjInKey, kObjAfterKey, kObjAfterColon, kObjInValue,
                             kObjAfterValue, kObjAfterComma };
enum ArrayPhase : uint8_t { kArrOpen, kArrAfterOpen, kArrInValue, kArrAfterValue, kArrAfterComma };
enum StringPhase : uint8_t { kStrOpen, kStrBody, kStrEscape, kStrHex1, kStrHex2, kStrHex3, kStrHex4, kStrUtf8 };
enum RootPhase : uint8_t { kRootPrefix, kRootValue, kRootSuffix, kRootDone };

bool IsWs(uint8_t b) { return b == ' ' || b == '\n' || b == '\t'; }
bool IsDigit(uint8_t b) { return b >= '0' && b <= '9'; }
bool IsHex(uint8_t b) { return IsDigit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

Frame Fresh(const Node* n) {
  Frame f;
  f.node = n;
  return f;
}

// ChildDone tells the frame below a popped child that the child's value is
// complete.
void ChildDone(Frame& p) {
  const Node* n = p.node;
  switch (n->kind) {
    case NodeKind::kRoot:
      p.phase = n->suffix.empty() ? kRootDone : kRootSuffix;
      p.pos = 0;
      break;
    case NodeKind::kObject:
      if (p.phase == kObjInKey) {
        p.phase = kObjAfterKey;
        p.idx = p.aux ? static_cast<uint16_t>(n->props.size()) : static_cast<uint16_t>(p.pos + 1);
      } else {
        p.phase = kObjAfterValue;
      }
      p.ws = 0;
      break;
    case NodeKind::kArray:
      ++p.count;
      p.phase = kArrAfterValue;
      p.ws = 0;
      break;
    default:
      break;  // scalars have no children
  }
}

void PopDone(Stack& s) {
  s.pop_back();
  if (!s.empty()) ChildDone(s.back());
}

// Viable: some integer whose decimal text starts with the digits read so far
// (absolute value v, `digits` of them) lies in [lo, hi]: v itself, or v
// followed by k more digits, i.e. [v·10^k, v·10^k + 10^k − 1].
bool Viable(bool neg, int64_t v, uint32_t digits, int64_t lo, int64_t hi) {
  int64_t p = 1;
  for (uint32_t k = 0; digits + k <= 15; ++k, p *= 10) {
    int64_t a = v * p, b = a + p - 1;
    if (neg ? (-b <= hi && -a >= lo) : (a <= hi && b >= lo)) return true;
    if (neg ? -a < lo : a > hi) return false;
  }
  return false;
}

bool NumberAccepting(const Frame& f) {
  const Node* n = f.node;
  if (n->kind == NodeKind::kInteger) {
    if (f.phase == 3) return true;  // "0"
    if (f.phase != 2) return false;
    int64_t v = f.aux ? -f.val : f.val;
    return v >= n->lo && v <= n->hi;
  }
  return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8;
}

// IntegerStep: phases 0 start, 1 after '-', 2 digits, 3 a lone "0".
bool IntegerStep(Frame& f, uint8_t b) {
  const Node* n = f.node;
  bool full_range = n->lo == -kMaxInteger && n->hi == kMaxInteger;
  if (f.phase == 0 && b == '-' && n->lo < 0) {
    f.aux = 1;
    f.phase = 1;
    return true;
  }
  if (f.phase == 0 && b == '0' && n->lo <= 0 && n->hi >= 0) {
    f.phase = 3;
    return true;
  }
  if ((f.phase == 0 || f.phase == 1) && b >= '1' && b <= '9') {
    f.val = b - '0';
    f.count = 1;
  } else if (f.phase == 2 && IsDigit(b) && f.count < 15) {
    f.val = f.val * 10 + (b - '0');
    ++f.count;
  } else {
    return false;
  }
  if (!Viable(f.aux != 0, f.val, f.count, n->lo, n->hi)) return false;
  f.phase = 2;
  if (full_range) f.val = 0;  // only the digit count matters: fewer distinct states
  return true;
}

// NumberStep: -?(0|[1-9]d{0,14})(.d{1,15})?([eE][+-]?d{1,2})?
bool NumberStep(Frame& f, uint8_t b) {
  auto go = [&](uint8_t phase, uint32_t count) {
    f.phase = phase;
    f.count = count;
    return true;
  };
  switch (f.phase) {
    case 0:
      if (b == '-') return go(1, 0);
      [[fallthrough]];
    case 1:
      if (b == '0') return go(3, 1);
      if (b >= '1' && b <= '9') return go(2, 1);
      return false;
    case 2:
      if (IsDigit(b) && f.count < 15) return go(2, f.count + 1);
      [[fallthrough]];
    case 3:
      if (b == '.') return go(4, 0);
      if (b == 'e' || b == 'E') return go(6, 0);
      return false;
    case 4: return IsDigit(b) ? go(5, 1) : false;
    case 5:
      if (IsDigit(b) && f.count < 15) return go(5, f.count + 1);
      if (b == 'e' || b == 'E') return go(6, 0);
      return false;
    case 6:
      if (b == '+' || b == '-') return go(7, 0);
      [[fallthrough]];
    case 7: return IsDigit(b) ? go(8, 1) : false;
    case 8: return IsDigit(b) && f.count < 2 ? go(8, f.count + 1) : false;
  }
  return false;
}

void KeyByte(Frame& f, uint8_t b) {
  if (f.mask == 0) return;
  const auto& ex = f.node->exclude;
  for (size_t i = 0; i < ex.size(); ++i) {
    if ((f.mask >> i & 1) && (f.pos >= ex[i].size() || static_cast<uint8_t>(ex[i][f.pos]) != b)) {
      f.mask &= ~(uint64_t{1} << i);
    }
  }
  ++f.pos;
  if (f.mask == 0) f.pos = 0;
}

enum class Str { kTake, kClose, kReject };

// A string with a pattern walks its automaton (regex.h) in `pos`, one code
// point at a time; `val` gathers a code point split over UTF-8 bytes or \u
// hex digits, and each partial one must still be able to lead on. `count`
// is the string's code points including the one being read.
// RoomFor: from automaton state s the pattern can still end within
// minLength / maxLength.
bool RoomFor(const Node* n, uint32_t s, uint32_t count) {
  if (!n->end_lengths.empty()) {  // a window: the exact counts s can end in
    const uint32_t lo = n->min_len > count ? n->min_len - count : 0;
    return AnyBitIn(&n->end_lengths[size_t{s} * n->end_words], lo, n->max_len - count);
  }
  const uint32_t max_rest = n->regex->MaxRest(s);
  if (n->max_len != kUnbounded && n->regex->MinRest(s) > n->max_len - count) return false;
  return max_rest == RegexDfa::kUnbounded || count + max_rest >= n->min_len;
}

// PatternStep takes the completed code point cp.
bool PatternStep(Frame& f, uint32_t cp, uint32_t count) {
  const uint32_t s = f.node->regex->Next(f.pos, cp);
  if (s == RegexDfa::kDead || !RoomFor(f.node, s, count)) return false;
  f.pos = s;
  f.val = 0;
  return true;
}

// PatternCanTake: some code point in [lo, hi] leads on.
bool PatternCanTake(const Frame& f, uint32_t lo, uint32_t hi, uint32_t count) {
  return f.node->regex->AnyStep(f.pos, lo, hi, [&f, count](uint32_t s) { return RoomFor(f.node, s, count); });
}

// Utf8Span: the code points a UTF-8 sequence can still become, with `bits`
// decoded so far, `left` continuation bytes to come, the next in [lo, hi].
void Utf8Span(uint32_t bits, int left, uint8_t lo, uint8_t hi, uint32_t* min, uint32_t* max) {
  const int rest = 6 * (left - 1);
  *min = ((bits << 6) | (lo & 0x3Fu)) << rest;
  *max = (((bits << 6) | (hi & 0x3Fu)) << rest) | ((1u << rest) - 1);
}

Str StringStep(Frame& f, uint8_t b) {
  const Node* n = f.node;
  switch (f.phase) {
    case kStrOpen:
      if (b != '"') return Str::kReject;
      f.phase = kStrBody;
      return Str::kTake;
    case kStrBody: {
      if (b == '"') {
        if (f.count < n->min_len) return Str::kReject;
        if (n->regex != nullptr && !n->regex->Accepting(f.pos)) return Str::kReject;
        for (size_t i = 0; i < n->exclude.size(); ++i) {
          if ((f.mask >> i & 1) && n->exclude[i].size() == f.pos) return Str::kReject;  // a declared name
        }
        return Str::kClose;
      }
      if (b < 0x20 || f.count >= n->max_len) return Str::kReject;
      if (b == '\\') {
        if (!n->exclude.empty()) return Str::kReject;  // a free key is compared byte for byte
        // an escape gives a code point of the BMP (\uXXXX covers them all)
        if (n->regex != nullptr && !PatternCanTake(f, 0, 0xFFFF, f.count + 1)) return Str::kReject;
        f.phase = kStrEscape;
      } else if (b >= 0x80) {
        // UTF-8 lead byte: continuation count and the range of the next byte
        // (no overlongs, no surrogates, nothing above U+10FFFF).
        uint8_t need, lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b == 0xE0) need = 2, lo = 0xA0;
        else if (b == 0xED) need = 2, hi = 0x9F;
        else if (b >= 0xE1 && b <= 0xEF) need = 2;
        else if (b == 0xF0) need = 3, lo = 0x90;
        else if (b >= 0xF1 && b <= 0xF3) need = 3;
        else if (b == 0xF4) need = 3, hi = 0x8F;
        else return Str::kReject;
        if (n->regex != nullptr) {
          uint32_t min = 0, max = 0;
          Utf8Span(b & (0x3Fu >> need), need, lo, hi, &min, &max);
          if (!PatternCanTake(f, min, max, f.count + 1)) return Str::kReject;
          f.val = b & (0x3F >> need);
        }
        f.aux = need;
        f.lo = lo;
        f.hi = hi;
        f.phase = kStrUtf8;
      } else if (n->regex != nullptr && !PatternStep(f, b, f.count + 1)) {
        return Str::kReject;
      }
      ++f.count;
      if (n->max_len == kUnbounded) f.count = std::min(f.count, n->min_len);  // canonical: fewer states
      KeyByte(f, b);
      return Str::kTake;
    }
    case kStrEscape:
      if (b == 'u') {
        f.phase = kStrHex1;
        f.val = 0;
        return Str::kTake;
      }
      if (!std::strchr("\"\\/bfnrt", b) || b == 0) return Str::kReject;
      if (n->regex != nullptr) {
        static constexpr char kFrom[] = "\"\\/bfnrt";
        static constexpr uint8_t kTo[] = {'"', '\\', '/', '\b', '\f', '\n', '\r', '\t'};
        if (!PatternStep(f, kTo[std::strchr(kFrom, b) - kFrom], f.count)) return Str::kReject;
      }
      f.phase = kStrBody;
      return Str::kTake;
    case kStrHex1:
    case kStrHex2:
    case kStrHex3:
    case kStrHex4:
      if (!IsHex(b)) return Str::kReject;
      if (f.phase == kStrHex1) f.aux = (b == 'd' || b == 'D');
      if (f.phase == kStrHex2 && f.aux && !(b >= '0' && b <= '7')) return Str::kReject;  // \uD800-\uDFFF
      if (n->regex != nullptr) {
        const uint32_t digit = b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
        const uint32_t bits = static_cast<uint32_t>(f.val) * 16 + digit;
        const int rest = 4 * (kStrHex4 - f.phase);
        if (rest == 0) {
          if (!PatternStep(f, bits, f.count)) return Str::kReject;
        } else {
          if (!PatternCanTake(f, bits << rest, (bits << rest) | ((1u << rest) - 1), f.count)) return Str::kReject;
          f.val = bits;
        }
      }
      f.phase = f.phase == kStrHex4 ? kStrBody : f.phase + 1;
      if (f.phase == kStrBody) f.aux = 0;
      return Str::kTake;
    case kStrUtf8:
      if (b < f.lo || b > f.hi) return Str::kReject;
      if (n->regex != nullptr) {
        const uint32_t bits = static_cast<uint32_t>(f.val) << 6 | (b & 0x3Fu);
        if (f.aux == 1) {
          if (!PatternStep(f, bits, f.count)) return Str::kReject;
        } else {
          uint32_t min = 0, max = 0;
          Utf8Span(bits, f.aux - 1, 0x80, 0xBF, &min, &max);
          if (!PatternCanTake(f, min, max, f.count)) return Str::kReject;
          f.val = bits;
        }
      }
      f.lo = 0x80;
      f.hi = 0xBF;
      if (--f.aux == 0) {
        f.phase = kStrBody;
        f.lo = f.hi = 0;
      }
      KeyByte(f, b);
      return Str::kTake;
  }
  return Str::kReject;
}

class Feeder {
 public:
  Feeder(std::vector<Frame>& frames, std::vector<uint32_t>& ends) : frames_(frames), ends_(ends) {}

  void Emit(const Stack& s) {
    if (ends_.size() >= kMaxStacks) return;
    uint32_t begin = 0;
    for (uint32_t e : ends_) {
      if (e - begin == s.size() && std::equal(s.begin(), s.end(), frames_.begin() + begin)) return;
      begin = e;
    }
    frames_.insert(frames_.end(), s.begin(), s.end());
    ends_.push_back(static_cast<uint32_t>(frames_.size()));
  }

  void Feed(Stack& s, uint8_t b, int expansions) {
    for (;;) {
      if (s.empty() || s.size() > kMaxStackDepth) return;
      Frame& f = s.back();
      const Node* n = f.node;
      switch (n->kind) {
        case NodeKind::kAnyOf: {
          if (++expansions > 32) return;  // left-recursive $ref chains
          if (++total_ > kMaxExpansionsPerByte) return;  // their product (matcher.h)
          for (const Node* alt : n->alts) {
            Stack c = s;
            c.back() = Fresh(alt);
            Feed(c, b, expansions);
          }
          return;
        }
        case NodeKind::kLiteral:
          if (f.pos < n->literal.size() && static_cast<uint8_t>(n->literal[f.pos]) == b) {
            if (++f.pos == n->literal.size()) PopDone(s);
            Emit(s);
          }
          return;
        case NodeKind::kRoot: {
          const std::string& lit = f.phase == kRootPrefix ? n->literal : n->suffix;
          if ((f.phase == kRootPrefix || f.phase == kRootSuffix) && f.pos < lit.size() &&
              static_cast<uint8_t>(lit[f.pos]) == b) {
            if (++f.pos == lit.size()) {
              if (f.phase == kRootPrefix) {
                f.phase = kRootValue;
                s.push_back(Fresh(n->alts[0]));
              } else {
                f.phase = kRootDone;
              }
            }
            Emit(s);
          }
          return;
        }
        case NodeKind::kString: {
          Str r = StringStep(f, b);
          if (r == Str::kReject) return;
          if (r == Str::kClose) PopDone(s);
          Emit(s);
          return;
        }
        case NodeKind::kInteger:
        case NodeKind::kNumber: {
          if (n->kind == NodeKind::kInteger ? IntegerStep(f, b) : NumberStep(f, b)) {
            Emit(s);
            return;
          }
          if (!NumberAccepting(f)) return;
          PopDone(s);  // the number ended before b: its parent takes b
          continue;
        }
        case NodeKind::kObject:
          if (!Object(s, b)) return;
          continue;
        case NodeKind::kArray:
          if (!Array(s, b)) return;
          continue;
      }
      return;
    }
  }

 private:
  // Whitespace at the current place, bounded so a model cannot loop on it.
  bool Ws(Stack& s, uint8_t b) {
    Frame& f = s.back();
    if (!IsWs(b)) return false;
    if (f.ws < kMaxWhitespace) {
      ++f.ws;
      Emit(s);
    }
    return true;
  }

  // Object returns true when it pushed a child that must take `b`; otherwise
  // it has emitted what `b` leads to (or nothing).
  bool Object(Stack& s, uint8_t b) {
    Frame& f = s.back();
    const Node* n = f.node;
    const size_t n_props = n->props.size();
    const bool may_close = n->next_required[f.idx] == n_props;
    switch (f.phase) {
      case kObjOpen:
        if (b == '{') {
          f.phase = kObjAfterOpen;
          Emit(s);
        }
        return false;
      case kObjAfterOpen:
      case kObjAfterComma:
        if (Ws(s, b)) return false;
        if (b == '}' && f.phase == kObjAfterOpen && may_close) {
          PopDone(s);
          Emit(s);
        } else if (b == '"') {
          StartKey(s);
        }
        return false;
      case kObjAfterKey:
        if (Ws(s, b)) return false;
        if (b == ':') {
          f.phase = kObjAfterColon;
          f.ws = 0;
          Emit(s);
        }
        return false;
      case kObjAfterColon: {
        if (Ws(s, b)) return false;
        const Node* value = f.aux ? n->additional : n->props[f.pos].value;
        f.phase = kObjInValue;
        s.push_back(Fresh(value));
        return true;
      }
      case kObjAfterValue:
        if (Ws(s, b)) return false;
        if (b == '}' && may_close) {
          PopDone(s);
          Emit(s);
        } else if (b == ',' && (f.idx < n_props || n->additional)) {
          f.phase = kObjAfterComma;
          f.ws = 0;
          Emit(s);
        }
        return false;
      default:
        return false;
    }
  }

  // StartKey forks on a key's opening quote: each declared property that may
  // come next (up to the first required one), and a free key when allowed.
  void StartKey(const Stack& s) {
    const Frame& f = s.back();
    const Node* n = f.node;
    const size_t n_props = n->props.size();
    for (size_t j = f.idx; j < n_props; ++j) {
      Stack c = s;
      c.back().phase = kObjInKey;
      c.back().pos = static_cast<uint32_t>(j);
      c.back().aux = 0;
      Frame k = Fresh(n->props[j].key);
      k.pos = 1;  // the quote
      c.push_back(k);
      Emit(c);
      if (n->props[j].required) break;
    }
    if (n->additional && n->next_required[f.idx] == n_props) {
      Stack c = s;
      c.back().phase = kObjInKey;
      c.back().aux = 1;
      Frame k = Fresh(n->free_key);
      k.phase = kStrBody;
      size_t ex = n->free_key->exclude.size();
      k.mask = ex >= 64 ? ~uint64_t{0} : (uint64_t{1} << ex) - 1;
      c.push_back(k);
      Emit(c);
    }
  }

  bool Array(Stack& s, uint8_t b) {
    Frame& f = s.back();
    const Node* n = f.node;
    switch (f.phase) {
      case kArrOpen:
        if (b == '[') {
          f.phase = kArrAfterOpen;
          Emit(s);
        }
        return false;
      case kArrAfterOpen:
      case kArrAfterComma:
        if (Ws(s, b)) return false;
        if (b == ']' && f.phase == kArrAfterOpen && n->min_items == 0) {
          PopDone(s);
          Emit(s);
          return false;
        }
        if (f.count >= n->max_items) return false;
        f.phase = kArrInValue;
        s.push_back(Fresh(n->items));
        return true;
      case kArrAfterValue:
        if (Ws(s, b)) return false;
        if (b == ']' && f.count >= n->min_items) {
          PopDone(s);
          Emit(s);
        } else if (b == ',' && f.count < n->max_items) {
          f.phase = kArrAfterComma;
          f.ws = 0;
          Emit(s);
        }
        return false;
      default:
        return false;
    }
  }

  std::vector<Frame>& frames_;
  std::vector<uint32_t>& ends_;
  size_t total_ = 0;  // anyOf expansions so far (kMaxExpansionsPerByte)
};

}  // namespace

MatchState MatchState::Start(const Grammar& g) {
  MatchState st;
  Frame root = Fresh(g.root());
  st.frames_.push_back(root);
  if (g.root()->literal.empty()) {
    st.frames_.back().phase = kRootValue;
    st.frames_.push_back(Fresh(g.root()->alts[0]));
  }
  st.ends_.push_back(static_cast<uint32_t>(st.frames_.size()));
  return st;
}

bool MatchState::Advance(uint8_t b) {
  // Scratch buffers swapped with ours: a walk over the vocabulary trie makes
  // millions of steps, none of which allocates once capacities settle.
  thread_local std::vector<Frame> frames;
  thread_local std::vector<uint32_t> ends;
  thread_local Stack s;
  frames.clear();
  ends.clear();
  Feeder feeder(frames, ends);
  uint32_t begin = 0;
  for (uint32_t e : ends_) {
    s.assign(frames_.begin() + begin, frames_.begin() + e);
    feeder.Feed(s, b, 0);
    begin = e;
  }
  frames_.swap(frames);
  ends_.swap(ends);
  return !ends_.empty();
}

bool MatchState::Advance(std::string_view bytes) {
  for (char c : bytes) {
    if (!Advance(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

bool MatchState::Complete() const {
  uint32_t begin = 0;
  for (uint32_t e : ends_) {
    Stack s(frames_.begin() + begin, frames_.begin() + e);
    begin = e;
    while (!s.empty()) {
      const Frame& f = s.back();
      if (f.node->kind == NodeKind::kRoot) {
        if (f.phase == kRootDone) return true;
        break;
      }
      if ((f.node->kind != NodeKind::kInteger && f.node->kind != NodeKind::kNumber) || !NumberAccepting(f)) break;
      PopDone(s);
    }
  }
  return false;
}

bool MatchState::InStringBody(uint32_t* room) const {
  if (ends_.size() != 1) return false;
  const Frame& f = frames_.back();
  if (f.node->kind != NodeKind::kString || f.phase != kStrBody || f.mask != 0 || f.node->regex != nullptr) return false;
  *room = f.node->max_len == kUnbounded ? kUnbounded : f.node->max_len - f.count;
  return true;
}

bool MatchState::InRootLiteral() const {
  return ends_.size() == 1 && frames_.size() == 1 &&
         (frames_[0].phase == kRootPrefix || frames_[0].phase == kRootSuffix);
}

void MatchState::Key(std::string* out) const {
  auto put = [out](const void* p, size_t n) { out->append(static_cast<const char*>(p), n); };
  for (const Frame& f : frames_) {
    put(&f.node, sizeof f.node);
    put(&f.mask, sizeof f.mask);
    put(&f.val, sizeof f.val);
    put(&f.count, sizeof f.count);
    put(&f.pos, sizeof f.pos);
    put(&f.idx, sizeof f.idx);
    uint8_t small[5] = {f.phase, f.ws, f.aux, f.lo, f.hi};
    put(small, sizeof small);
  }
  for (uint32_t e : ends_) put(&e, sizeof e);
}

}  // namespace cllm::engine::grammar
