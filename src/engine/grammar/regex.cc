// regex.cc — pattern → syntax tree → Thompson NFA → DFA over code-point ranges.
#include "engine/grammar/regex.h"

#include <algorithm>
#include <map>
#include <string>

#include "base/utf8.h"

namespace cllm::engine::grammar {
namespace {

constexpr uint32_t kMaxCp = 0x10FFFF;
constexpr uint32_t kInf = 0xFFFFFFFF;
constexpr size_t kMaxNfaStates = 20000;
constexpr size_t kMaxDfaEdges = 200000;
constexpr int kMaxGroupDepth = 32;

Error<GrammarErrc> Bad(GrammarErrc c, const std::string& msg) {
  return MakeError(c, "pattern: " + msg);
}

// CharSet: sorted, disjoint, non-adjacent closed ranges of code points.
struct Range {
  uint32_t lo, hi;
};
using CharSet = std::vector<Range>;

CharSet Normalized(CharSet s) {
  std::sort(s.begin(), s.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
  CharSet out;
  for (const Range& r : s) {
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

CharSet Complement(const CharSet& s) {  // over [0, kMaxCp]; s normalized
  CharSet out;
  uint32_t next = 0;
  for (const Range& r : s) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCp) out.push_back({next, kMaxCp});
  return out;
}

CharSet WithoutSurrogates(const CharSet& s) {
  CharSet out;
  for (const Range& r : s) {
    if (r.hi < 0xD800 || r.lo > 0xDFFF) {
      out.push_back(r);
      continue;
    }
    if (r.lo < 0xD800) out.push_back({r.lo, 0xD7FF});
    if (r.hi > 0xDFFF) out.push_back({0xE000, r.hi});
  }
  return out;
}

const CharSet& Digits() {
  static const CharSet k = {{'0', '9'}};
  return k;
}
const CharSet& Word() {
  static const CharSet k = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  return k;
}
const CharSet& Space() {  // ECMA-262 WhiteSpace and LineTerminator
  static const CharSet k = Normalized({{'\t', '\r'},
                                       {' ', ' '},
                                       {0xA0, 0xA0},
                                       {0x1680, 0x1680},
                                       {0x2000, 0x200A},
                                       {0x2028, 0x2029},
                                       {0x202F, 0x202F},
                                       {0x205F, 0x205F},
                                       {0x3000, 0x3000},
                                       {0xFEFF, 0xFEFF}});
  return k;
}
const CharSet& Dot() {  // anything but a line terminator
  static const CharSet k = Complement(Normalized({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
  return k;
}
const CharSet& AnyChar() {
  static const CharSet k = {{0, kMaxCp}};
  return k;
}

struct Ast {
  enum Kind { kEmpty, kSet, kCat, kAlt, kRep } kind = kEmpty;
  CharSet set;
  std::vector<Ast> kids;
  uint32_t min = 0, max = 0;
};

Ast SetNode(CharSet s) {
  Ast a;
  a.kind = Ast::kSet;
  a.set = WithoutSurrogates(Normalized(std::move(s)));
  return a;
}

Ast RepNode(Ast kid, uint32_t min, uint32_t max) {
  Ast a;
  a.kind = Ast::kRep;
  a.min = min, a.max = max;
  a.kids.push_back(std::move(kid));
  return a;
}

// Parser: recursive descent over the pattern's code points.
class Parser {
 public:
  explicit Parser(std::vector<uint32_t> cps) : p_(std::move(cps)) {}

  GrammarResult<Ast> Top() {
    Ast alt;
    alt.kind = Ast::kAlt;
    while (true) {
      const bool anchored_start = Eat('^');
      bool anchored_end = false;
      CLLM_ASSIGN_OR_RETURN(Ast seq, Sequence(true, &anchored_end));
      Ast cat;
      cat.kind = Ast::kCat;
      if (!anchored_start) cat.kids.push_back(RepNode(SetNode(AnyChar()), 0, kInf));
      cat.kids.push_back(std::move(seq));
      if (!anchored_end) cat.kids.push_back(RepNode(SetNode(AnyChar()), 0, kInf));
      alt.kids.push_back(std::move(cat));
      if (AtEnd()) break;
      if (!Eat('|')) return Bad(GrammarErrc::kInvalidSchema, "unmatched ')'");
    }
    return alt;
  }

 private:
  bool AtEnd() const { return i_ >= p_.size(); }
  uint32_t Peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : kInf; }
  bool Eat(uint32_t c) {
    if (Peek() != c) return false;
    ++i_;
    return true;
  }

  // Sequence: repeats up to '|', ')' or the end. At the top, a '$' right
  // before '|' or the end anchors the alternative's end.
  GrammarResult<Ast> Sequence(bool top, bool* anchored_end) {
    Ast cat;
    cat.kind = Ast::kCat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      if (Peek() == '$') {
        ++i_;
        if (top && (AtEnd() || Peek() == '|')) {
          *anchored_end = true;
          break;
        }
        return Bad(GrammarErrc::kUnsupported,
                   "'$' other than at the end of the pattern (or of a top-level alternative)");
      }
      if (Peek() == '^') {
        return Bad(GrammarErrc::kUnsupported,
                   "'^' other than at the start of the pattern (or of a top-level alternative)");
      }
      CLLM_ASSIGN_OR_RETURN(Ast a, Repeat());
      cat.kids.push_back(std::move(a));
    }
    return cat;
  }

  GrammarResult<Ast> Repeat() {
    CLLM_ASSIGN_OR_RETURN(Ast atom, Atom());
    uint32_t min = 0, max = 0;
    bool quantified = true;
    if (Eat('*')) {
      min = 0, max = kInf;
    } else if (Eat('+')) {
      min = 1, max = kInf;
    } else if (Eat('?')) {
      min = 0, max = 1;
    } else if (Peek() == '{') {
      CLLM_ASSIGN_OR_RETURN(bool braces, Braces(&min, &max));
      if (!braces)
        return Bad(GrammarErrc::kUnsupported, "a '{' that is not a quantifier (write '\\{')");
    } else {
      quantified = false;
    }
    if (!quantified) return atom;
    Eat('?');  // lazy: the same strings
    if (Peek() == '*' || Peek() == '+' || Peek() == '?' || Peek() == '{') {
      return Bad(GrammarErrc::kInvalidSchema, "a quantifier after a quantifier");
    }
    return RepNode(std::move(atom), min, max);
  }

  // Braces parses {n}, {n,} or {n,m} at '{'; false (nothing consumed) if
  // the text there is not one.
  GrammarResult<bool> Braces(uint32_t* min, uint32_t* max) {
    size_t j = i_ + 1;
    auto number = [&](uint32_t* out) {
      size_t start = j;
      uint64_t v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        v = std::min<uint64_t>(v * 10 + (p_[j] - '0'), uint64_t{kMaxRegexRepeat} + 1);
        ++j;
      }
      *out = static_cast<uint32_t>(v);
      return j > start;
    };
    if (!number(min)) return false;
    *max = *min;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      *max = kInf;
      if (j < p_.size() && p_[j] != '}' && !number(max)) return false;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    i_ = j + 1;
    if (*min > kMaxRegexRepeat || (*max != kInf && *max > kMaxRegexRepeat)) {
      return Bad(GrammarErrc::kTooLarge, "a repeat count above " + std::to_string(kMaxRegexRepeat));
    }
    if (*max < *min) return Bad(GrammarErrc::kInvalidSchema, "a quantifier {n,m} with m < n");
    return true;
  }

  GrammarResult<Ast> Atom() {
    const uint32_t c = Peek();
    ++i_;
    switch (c) {
      case '(': {
        if (++depth_ > kMaxGroupDepth)
          return Bad(GrammarErrc::kTooLarge,
                     "groups nested deeper than " + std::to_string(kMaxGroupDepth));
        if (Eat('?')) {
          if (Eat(':')) {
          } else if (Peek() == '<' && Peek(1) != '=' && Peek(1) != '!') {
            ++i_;
            while (!AtEnd() && Peek() != '>')
              ++i_;  // a named group: the name does not change the language
            if (!Eat('>')) return Bad(GrammarErrc::kInvalidSchema, "an unterminated group name");
          } else {
            return Bad(GrammarErrc::kUnsupported,
                       "lookahead / lookbehind ('(?=', '(?!', '(?<=', '(?<!') and flags");
          }
        }
        Ast alt;
        alt.kind = Ast::kAlt;
        while (true) {
          bool unused = false;
          CLLM_ASSIGN_OR_RETURN(Ast seq, Sequence(false, &unused));
          alt.kids.push_back(std::move(seq));
          if (Eat('|')) continue;
          if (Eat(')')) {
            --depth_;
            return alt;
          }
          return Bad(GrammarErrc::kInvalidSchema, "an unterminated group");
        }
      }
      case '[':
        return Class();
      case '.':
        return SetNode(Dot());
      case '\\': {
        CharSet s;
        CLLM_RETURN_IF_ERROR(Escape(false, &s));
        return SetNode(std::move(s));
      }
      case '*':
      case '+':
      case '?':
        return Bad(GrammarErrc::kInvalidSchema,
                   "nothing to repeat before '" + std::string(1, static_cast<char>(c)) + "'");
      case '{': {
        --i_;
        uint32_t a = 0, b = 0;
        CLLM_ASSIGN_OR_RETURN(bool braces, Braces(&a, &b));
        if (braces) return Bad(GrammarErrc::kInvalidSchema, "nothing to repeat before '{'");
        return Bad(GrammarErrc::kUnsupported, "a '{' that is not a quantifier (write '\\{')");
      }
      default:
        return SetNode({{c, c}});
    }
  }

  GrammarResult<Ast> Class() {
    const bool negated = Eat('^');
    CharSet s;
    while (true) {
      if (AtEnd()) return Bad(GrammarErrc::kInvalidSchema, "an unterminated '['");
      if (Eat(']')) break;
      CharSet a;
      CLLM_ASSIGN_OR_RETURN(bool single, ClassAtom(&a));
      if (Peek() == '-' && Peek(1) != ']' && Peek(1) != kInf) {
        ++i_;
        CharSet b;
        CLLM_ASSIGN_OR_RETURN(bool single_b, ClassAtom(&b));
        if (!single || !single_b)
          return Bad(GrammarErrc::kInvalidSchema,
                     "a class range with a class (\\d, \\w, \\s) at an end");
        if (b[0].lo < a[0].lo)
          return Bad(GrammarErrc::kInvalidSchema, "a class range out of order");
        s.push_back({a[0].lo, b[0].lo});
      } else {
        s.insert(s.end(), a.begin(), a.end());
      }
    }
    s = Normalized(std::move(s));
    return SetNode(negated ? Complement(s) : s);
  }

  // ClassAtom: one character (true) or an escaped class (false).
  GrammarResult<bool> ClassAtom(CharSet* out) {
    const uint32_t c = Peek();
    ++i_;
    if (c != '\\') {
      *out = {{c, c}};
      return true;
    }
    CLLM_RETURN_IF_ERROR(Escape(true, out));
    return out->size() == 1 && (*out)[0].lo == (*out)[0].hi;
  }

  uint32_t Hex(int digits, bool* ok) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const uint32_t h = Peek();
      int d = h >= '0' && h <= '9'   ? static_cast<int>(h - '0')
              : h >= 'a' && h <= 'f' ? static_cast<int>(h - 'a' + 10)
              : h >= 'A' && h <= 'F' ? static_cast<int>(h - 'A' + 10)
                                     : -1;
      if (d < 0) {
        *ok = false;
        return 0;
      }
      v = v * 16 + static_cast<uint32_t>(d);
      ++i_;
    }
    *ok = true;
    return v;
  }

  // Escape: after '\'. In a class, \b is a backspace.
  Status<GrammarErrc> Escape(bool in_class, CharSet* out) {
    if (AtEnd()) return Bad(GrammarErrc::kInvalidSchema, "a '\\' at the end");
    const uint32_t c = Peek();
    ++i_;
    auto one = [out](uint32_t cp) { *out = {{cp, cp}}; };
    switch (c) {
      case 'd':
        *out = Digits();
        return OkStatus();
      case 'D':
        *out = Complement(Digits());
        return OkStatus();
      case 'w':
        *out = Word();
        return OkStatus();
      case 'W':
        *out = Complement(Word());
        return OkStatus();
      case 's':
        *out = Space();
        return OkStatus();
      case 'S':
        *out = Complement(Space());
        return OkStatus();
      case 't':
        one('\t');
        return OkStatus();
      case 'n':
        one('\n');
        return OkStatus();
      case 'r':
        one('\r');
        return OkStatus();
      case 'f':
        one('\f');
        return OkStatus();
      case 'v':
        one('\v');
        return OkStatus();
      case '0':
        if (Peek() >= '0' && Peek() <= '9') return Bad(GrammarErrc::kUnsupported, "octal escapes");
        one(0);
        return OkStatus();
      case 'x':
      case 'u': {
        if (c == 'u' && Peek() == '{')
          return Bad(GrammarErrc::kUnsupported, "'\\u{…}' escapes (unicode mode)");
        bool ok = false;
        const uint32_t v = Hex(c == 'x' ? 2 : 4, &ok);
        if (!ok)
          return Bad(GrammarErrc::kInvalidSchema, std::string("a '\\") + static_cast<char>(c) +
                                                      "' escape without its hex digits");
        one(v);
        return OkStatus();
      }
      case 'b':
        if (in_class) {
          one('\b');
          return OkStatus();
        }
        return Bad(GrammarErrc::kUnsupported, "word boundaries ('\\b', '\\B')");
      case 'B':
        return Bad(GrammarErrc::kUnsupported, "word boundaries ('\\b', '\\B')");
      case 'p':
      case 'P':
        return Bad(GrammarErrc::kUnsupported, "unicode property classes ('\\p{…}')");
      case 'c':
        return Bad(GrammarErrc::kUnsupported, "control escapes ('\\cX')");
      case 'k':
        return Bad(GrammarErrc::kUnsupported, "backreferences");
      default:
        if (c >= '1' && c <= '9') return Bad(GrammarErrc::kUnsupported, "backreferences");
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
          return Bad(GrammarErrc::kInvalidSchema,
                     std::string("an unknown escape '\\") + static_cast<char>(c) + "'");
        }
        one(c);  // escaped punctuation (or any other character) is itself
        return OkStatus();
    }
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
  int depth_ = 0;
};

// Nfa: Thompson's construction, built back to front (each fragment is made
// knowing the state it continues to). A state either takes a character set
// (set >= 0, to `out`) or is an epsilon fork (`eps`).
struct Nfa {
  struct State {
    int set = -1;
    uint32_t out = 0;
    std::vector<uint32_t> eps;
  };
  explicit Nfa(RegexBudget* b) : budget(b) {}
  std::vector<State> states;
  std::vector<CharSet> sets;  // one per class of the pattern, shared by its copies
  std::map<const CharSet*, int> set_ids;
  uint32_t accept = 0;
  RegexBudget* budget;

  Error<GrammarErrc> Costly() const {
    return Bad(GrammarErrc::kTooLarge,
               "too costly to compile (repeats of repeats or of large classes)");
  }

  GrammarResult<uint32_t> Add(State s) {
    if (states.size() >= kMaxNfaStates || !budget->Spend(1 + s.eps.size())) return Costly();
    states.push_back(std::move(s));
    return static_cast<uint32_t>(states.size() - 1);
  }

  GrammarResult<uint32_t> Build(const Ast& a, uint32_t next) {
    if (!budget->Spend(1)) return Costly();
    switch (a.kind) {
      case Ast::kEmpty:
        return next;
      case Ast::kSet: {
        auto [it, fresh] = set_ids.emplace(&a.set, static_cast<int>(sets.size()));
        if (fresh) {
          if (!budget->Spend(a.set.size())) return Costly();
          sets.push_back(a.set);
        }
        State s;
        s.set = it->second;
        s.out = next;
        return Add(std::move(s));
      }
      case Ast::kCat:
        for (auto it = a.kids.rbegin(); it != a.kids.rend(); ++it) {
          CLLM_ASSIGN_OR_RETURN(next, Build(*it, next));
        }
        return next;
      case Ast::kAlt: {
        State fork;
        for (const Ast& k : a.kids) {
          CLLM_ASSIGN_OR_RETURN(uint32_t s, Build(k, next));
          if (std::find(fork.eps.begin(), fork.eps.end(), s) == fork.eps.end())
            fork.eps.push_back(s);
        }
        return Add(std::move(fork));
      }
      case Ast::kRep: {
        uint32_t r = next;
        if (a.max == kInf) {
          CLLM_ASSIGN_OR_RETURN(uint32_t loop, Add(State{}));
          CLLM_ASSIGN_OR_RETURN(uint32_t body, Build(a.kids[0], loop));
          states[loop].eps = {body, next};
          r = loop;
        } else {
          for (uint32_t k = a.min; k < a.max;
               ++k) {  // X(X(X)?)? …: each level takes one more or leaves
            CLLM_ASSIGN_OR_RETURN(uint32_t body, Build(a.kids[0], r));
            CLLM_ASSIGN_OR_RETURN(r, Add(State{-1, 0, {body, next}}));
          }
        }
        for (uint32_t k = 0; k < a.min; ++k) {
          CLLM_ASSIGN_OR_RETURN(r, Build(a.kids[0], r));
        }
        return r;
      }
    }
    return next;
  }

  // Closure: the set states (and the accept state) reachable from `from`
  // by epsilon moves, sorted; false when the budget ran out.
  bool Closure(const std::vector<uint32_t>& from, std::vector<uint32_t>* out) {
    out->clear();
    stack_ = from;
    if (seen_.size() != states.size()) seen_.assign(states.size(), 0);
    ++gen_;
    while (!stack_.empty()) {
      const uint32_t s = stack_.back();
      stack_.pop_back();
      if (!budget->Spend(1)) return false;
      if (seen_[s] == gen_) continue;
      seen_[s] = gen_;
      if (states[s].set >= 0 || s == accept) out->push_back(s);
      for (uint32_t e : states[s].eps) stack_.push_back(e);
    }
    std::sort(out->begin(), out->end());
    return true;
  }

 private:
  std::vector<uint32_t> seen_, stack_;  // Closure's marks (by generation) and work list
  uint32_t gen_ = 0;
};

}  // namespace

class DfaBuilder {
 public:
  static void Rests(RegexDfa& d);
  static GrammarResult<std::shared_ptr<const RegexDfa>> Build(Nfa& nfa, uint32_t start) {
    auto dfa = std::make_shared<RegexDfa>();
    std::vector<uint32_t> closure;
    size_t total_edges = 0;
    std::map<std::vector<uint32_t>, uint32_t> ids;
    std::vector<std::vector<uint32_t>> subsets;
    auto id_of = [&](std::vector<uint32_t> set) -> GrammarResult<uint32_t> {
      auto it = ids.find(set);
      if (it != ids.end()) return it->second;
      if (ids.size() >= kMaxRegexDfaStates) {
        return Bad(GrammarErrc::kTooLarge,
                   "more than " + std::to_string(kMaxRegexDfaStates) + " automaton states");
      }
      const uint32_t id = static_cast<uint32_t>(ids.size());
      ids.emplace(set, id);
      subsets.push_back(std::move(set));
      return id;
    };
    if (!nfa.Closure({start}, &closure)) return nfa.Costly();
    CLLM_RETURN_IF_ERROR(id_of(closure));
    std::vector<std::vector<RegexDfa::Edge>> edges;
    for (size_t d = 0; d < subsets.size(); ++d) {
      const std::vector<uint32_t> members = subsets[d];  // a copy: subsets grows below
      dfa->accept_.push_back(std::binary_search(members.begin(), members.end(), nfa.accept));
      // Sweep the members' ranges: between consecutive boundaries the set of
      // states that take a character is constant.
      struct Event {
        uint32_t at;
        bool open;
        uint32_t state;
      };
      std::vector<Event> events;
      for (uint32_t s : members) {
        if (nfa.states[s].set < 0) continue;
        for (const Range& r : nfa.sets[static_cast<size_t>(nfa.states[s].set)]) {
          events.push_back({r.lo, true, s});
          events.push_back({r.hi + 1, false, s});
        }
      }
      if (!nfa.budget->Spend(events.size())) return nfa.Costly();
      std::sort(events.begin(), events.end(),
                [](const Event& a, const Event& b) { return a.at < b.at; });
      std::vector<uint32_t> active;
      std::vector<RegexDfa::Edge> out;
      for (size_t e = 0; e < events.size();) {
        const uint32_t at = events[e].at;
        for (; e < events.size() && events[e].at == at; ++e) {
          if (events[e].open) {
            active.push_back(events[e].state);
          } else {
            active.erase(std::find(active.begin(), active.end(), events[e].state));
          }
        }
        if (active.empty() || e == events.size()) continue;
        std::vector<uint32_t> targets;
        for (uint32_t s : active) targets.push_back(nfa.states[s].out);
        if (!nfa.Closure(targets, &closure) || !nfa.budget->Spend(active.size()))
          return nfa.Costly();
        CLLM_ASSIGN_OR_RETURN(uint32_t to, id_of(closure));
        const uint32_t hi = events[e].at - 1;
        if (!out.empty() && out.back().to == to && out.back().hi + 1 == at) {
          out.back().hi = hi;
        } else {
          out.push_back({at, hi, to});
        }
      }
      total_edges += out.size();
      if (total_edges > kMaxDfaEdges) return nfa.Costly();
      edges.push_back(std::move(out));
    }
    // Keep only states from which an accepting state can be reached, so a
    // walk never enters a state it cannot finish.
    const size_t n = edges.size();
    std::vector<std::vector<uint32_t>> preds(n);
    for (size_t s = 0; s < n; ++s) {
      for (const auto& e : edges[s]) preds[e.to].push_back(static_cast<uint32_t>(s));
    }
    std::vector<uint8_t> live(dfa->accept_.begin(), dfa->accept_.end());
    std::vector<uint32_t> queue;
    for (size_t s = 0; s < n; ++s) {
      if (live[s]) queue.push_back(static_cast<uint32_t>(s));
    }
    for (size_t q = 0; q < queue.size(); ++q) {  // backwards from the accepting states
      for (uint32_t p : preds[queue[q]]) {
        if (!live[p]) live[p] = 1, queue.push_back(p);
      }
    }
    if (!live[0]) return Bad(GrammarErrc::kInvalidSchema, "matches no string");
    for (size_t s = 0; s < n; ++s) {
      dfa->first_.push_back(static_cast<uint32_t>(dfa->edges_.size()));
      for (const auto& e : edges[s]) {
        if (live[e.to]) dfa->edges_.push_back(e);
      }
    }
    dfa->first_.push_back(static_cast<uint32_t>(dfa->edges_.size()));
    Rests(*dfa);
    return std::shared_ptr<const RegexDfa>(std::move(dfa));
  }
};

// Rests fills min_rest_ (breadth first from the accepting states, backwards)
// and max_rest_ (states finished once all their successors are: those never
// finished reach a loop).
void DfaBuilder::Rests(RegexDfa& d) {
  const size_t n = d.accept_.size();
  const std::vector<std::vector<uint32_t>> preds = d.Preds();
  std::vector<uint32_t> outdeg(n, 0);
  for (size_t s = 0; s < n; ++s) outdeg[s] = d.first_[s + 1] - d.first_[s];
  d.min_rest_.assign(n, RegexDfa::kUnbounded);
  std::vector<uint32_t> queue;
  for (size_t s = 0; s < n; ++s) {
    if (d.accept_[s]) d.min_rest_[s] = 0, queue.push_back(static_cast<uint32_t>(s));
  }
  for (size_t q = 0; q < queue.size(); ++q) {
    for (uint32_t p : preds[queue[q]]) {
      if (d.min_rest_[p] == RegexDfa::kUnbounded) {
        d.min_rest_[p] = d.min_rest_[queue[q]] + 1;
        queue.push_back(p);
      }
    }
  }
  d.max_rest_.assign(n, RegexDfa::kUnbounded);
  std::vector<uint32_t> done;
  for (size_t s = 0; s < n; ++s) {
    if (outdeg[s] == 0) done.push_back(static_cast<uint32_t>(s));
  }
  for (size_t q = 0; q < done.size(); ++q) {
    const uint32_t s = done[q];
    uint32_t best = 0;  // successors are all finished (bounded) here
    for (uint32_t e = d.first_[s]; e < d.first_[s + 1]; ++e)
      best = std::max(best, d.max_rest_[d.edges_[e].to] + 1);
    d.max_rest_[s] = best;
    for (uint32_t p : preds[s]) {
      if (--outdeg[p] == 0) done.push_back(p);
    }
  }
}

bool RegexDfa::Matches(std::string_view utf8) const {
  std::vector<uint32_t> cps;
  if (!DecodeUtf8(utf8, &cps)) return false;
  uint32_t s = kStart;
  for (uint32_t cp : cps) {
    s = Next(s, cp);
    if (s == kDead) return false;
  }
  return Accepting(s);
}

uint32_t RegexDfa::Next(uint32_t s, uint32_t cp) const {
  auto b = edges_.begin() + first_[s], e = edges_.begin() + first_[s + 1];
  auto it = std::partition_point(b, e, [cp](const Edge& x) { return x.hi < cp; });
  return it != e && it->lo <= cp ? it->to : kDead;
}

std::vector<std::vector<uint32_t>> RegexDfa::Preds() const {
  std::vector<std::vector<uint32_t>> preds(accept_.size());
  for (size_t s = 0; s < accept_.size(); ++s) {
    for (uint32_t e = first_[s]; e < first_[s + 1]; ++e)
      preds[edges_[e].to].push_back(static_cast<uint32_t>(s));
  }
  return preds;
}

uint32_t RegexDfa::FirstEnding(uint32_t s, uint32_t lo) const {
  auto b = edges_.begin() + first_[s], e = edges_.begin() + first_[s + 1];
  return static_cast<uint32_t>(
      std::partition_point(b, e, [lo](const Edge& x) { return x.hi < lo; }) - edges_.begin());
}

GrammarResult<std::shared_ptr<const RegexDfa>> CompileRegex(std::string_view pattern,
                                                            RegexBudget* budget) {
  RegexBudget own;
  if (budget == nullptr) budget = &own;
  std::vector<uint32_t> cps;
  if (!DecodeUtf8(pattern, &cps)) return Bad(GrammarErrc::kInvalidSchema, "not valid UTF-8");
  Parser parser(std::move(cps));
  CLLM_ASSIGN_OR_RETURN(Ast ast, parser.Top());
  Nfa nfa(budget);
  CLLM_ASSIGN_OR_RETURN(nfa.accept, nfa.Add(Nfa::State{}));
  CLLM_ASSIGN_OR_RETURN(uint32_t start, nfa.Build(ast, nfa.accept));
  return DfaBuilder::Build(nfa, start);
}

std::vector<uint64_t> RegexDfa::EndLengths(uint32_t max) const {
  const size_t n = accept_.size(), words = max / 64 + 1;
  const std::vector<std::vector<uint32_t>> preds = Preds();
  std::vector<uint64_t> bits(n * words, 0);
  std::vector<uint32_t> layer, next;  // the states that end in exactly k more code points
  std::vector<uint32_t> mark(n, 0xFFFFFFFF);
  for (size_t s = 0; s < n; ++s) {
    if (accept_[s]) layer.push_back(static_cast<uint32_t>(s));
  }
  for (uint32_t k = 0; k <= max && !layer.empty(); ++k) {
    next.clear();
    for (uint32_t s : layer) {
      bits[s * words + k / 64] |= uint64_t{1} << (k % 64);
      for (uint32_t p : preds[s]) {
        if (mark[p] != k) mark[p] = k, next.push_back(p);
      }
    }
    layer.swap(next);
  }
  return bits;
}

const char* FormatPattern(std::string_view format) {
  // Month-aware days, 29 February never (it needs the year's leap rule).
  static constexpr const char* kDate =
      "[1-9][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]["
      "0-9]|30)|"
      "02-(?:0[1-9]|1[0-9]|2[0-8]))";
  static constexpr const char* kTime =
      "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):["
      "0-5][0-9])";
  static const std::string date = std::string("^") + kDate + "$";
  static const std::string time = std::string("^") + kTime + "$";
  static const std::string date_time = std::string("^") + kDate + "T" + kTime + "$";
  static constexpr const char* kUuid =
      "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
  static constexpr const char* kIpv4 =
      "^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-"
      "9]?[0-9])$";
  static constexpr const char* kEmail =
      "^[A-Za-z0-9_%+-]+(?:\\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
      "(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";
  if (format == "date") return date.c_str();
  if (format == "time") return time.c_str();
  if (format == "date-time") return date_time.c_str();
  if (format == "uuid") return kUuid;
  if (format == "ipv4") return kIpv4;
  if (format == "email") return kEmail;
  return nullptr;
}

}  // namespace cllm::engine::grammar
