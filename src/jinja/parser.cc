#include "jinja/parser.h"

#include <set>

namespace cllm::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& toks, int max_depth) : t_(toks), max_depth_(max_depth) {}

  Body Run() {
    std::string end;
    Body b = ParseBody({}, &end);
    if (!end.empty()) FailAt(JinjaErrc::kSyntax, Cur().pos, "unexpected '" + end + "'");
    return b;
  }

 private:
  // --- token helpers ------------------------------------------------------------
  const Token& Cur() const { return t_[i_]; }
  const Token& Peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  void Next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool IsOp(const char* op) const { return Cur().kind == Tok::kOp && Cur().text == op; }
  bool IsName(const char* n) const { return Cur().kind == Tok::kName && Cur().text == n; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* n) {
    if (!IsName(n)) return false;
    Next();
    return true;
  }
  [[noreturn]] void Unexpected(const std::string& expected) const {
    std::string got = Cur().kind == Tok::kEof        ? "end of template"
                      : Cur().kind == Tok::kBlockEnd ? "end of statement block"
                      : Cur().kind == Tok::kVarEnd   ? "end of print statement"
                                                     : "'" + Cur().text + "'";
    FailAt(JinjaErrc::kSyntax, Cur().pos, "expected " + expected + ", got " + got);
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) Unexpected(std::string("'") + op + "'");
  }
  std::string ExpectName() {
    if (Cur().kind != Tok::kName) Unexpected("a name");
    std::string n = Cur().text;
    Next();
    return n;
  }
  void ExpectBlockEnd() {
    if (Cur().kind != Tok::kBlockEnd) Unexpected("end of statement block");
    Next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > p_->max_depth_) FailAt(JinjaErrc::kLimit, p_->Cur().pos, "template nests too deeply");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  // Deeper counts one more level of the tree a loop builds (a + b + c is as
  // deep as it is long); ChainGuard gives the levels back when the loop ends.
  struct ChainGuard {
    explicit ChainGuard(Parser* p) : p_(p) {}
    ~ChainGuard() { p_->depth_ -= added_; }
    void Deeper() {
      ++added_;
      if (++p_->depth_ > p_->max_depth_) FailAt(JinjaErrc::kLimit, p_->Cur().pos, "template nests too deeply");
    }
    Parser* p_;
    int added_ = 0;
  };

  static ExprPtr Make(ExprKind k, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }

  // --- statements ---------------------------------------------------------------
  // ParseBody reads statements until a block tag named in `ends` (left
  // unconsumed after its name, which goes to *end) or the end of input.
  Body ParseBody(const std::set<std::string>& ends, std::string* end) {
    DepthGuard g(this);
    Body body;
    end->clear();
    for (;;) {
      const Token& tok = Cur();
      if (tok.kind == Tok::kEof) {
        if (!ends.empty()) {
          FailAt(JinjaErrc::kSyntax, tok.pos, "unexpected end of template, expected '" + *ends.begin() + "'");
        }
        return body;
      }
      if (tok.kind == Tok::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->pos = tok.pos;
        s->text = tok.text;
        body.push_back(std::move(s));
        Next();
        continue;
      }
      if (tok.kind == Tok::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->pos = tok.pos;
        Next();
        s->expr = ParseTuple(true);
        if (Cur().kind != Tok::kVarEnd) Unexpected("end of print statement");
        Next();
        body.push_back(std::move(s));
        continue;
      }
      if (tok.kind != Tok::kBlockBegin) Unexpected("a statement");
      Next();
      if (Cur().kind != Tok::kName) Unexpected("a statement name");
      if (ends.count(Cur().text)) {
        *end = Cur().text;
        Next();
        return body;
      }
      body.push_back(ParseStatement());
    }
  }

  std::unique_ptr<Stmt> ParseStatement() {
    auto s = std::make_unique<Stmt>();
    s->pos = Cur().pos;
    std::string kw = ExpectName();
    std::string end;
    if (kw == "if") {
      s->kind = StmtKind::kIf;
      ExprPtr cond = ParseTuple(false);
      ExpectBlockEnd();
      for (;;) {
        Body b = ParseBody({"elif", "else", "endif"}, &end);
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") {
          cond = ParseTuple(false);
          ExpectBlockEnd();
          continue;
        }
        if (end == "else") {
          ExpectBlockEnd();
          s->else_body = ParseBody({"endif"}, &end);
        }
        break;
      }
      ExpectBlockEnd();
    } else if (kw == "for") {
      s->kind = StmtKind::kFor;
      s->targets = ParseTargets();
      if (!SkipName("in")) Unexpected("'in'");
      ++loop_depth_;
      s->expr = ParseTuple(false, /*with_condexpr=*/false);
      if (SkipName("if")) s->cond = ParseExpression();
      if (IsName("recursive")) FailAt(JinjaErrc::kSyntax, Cur().pos, "recursive loops are not supported");
      ExpectBlockEnd();
      s->body = ParseBody({"else", "endfor"}, &end);
      --loop_depth_;
      if (end == "else") {
        ExpectBlockEnd();
        s->else_body = ParseBody({"endfor"}, &end);
      }
      ExpectBlockEnd();
    } else if (kw == "set") {
      if (Cur().kind == Tok::kName && Peek().kind == Tok::kOp && Peek().text == ".") {
        s->kind = StmtKind::kSet;
        s->name = ExpectName();
        Next();
        s->attr = ExpectName();
        ExpectOp("=");
        s->expr = ParseTuple(false);
        ExpectBlockEnd();
      } else {
        s->targets = ParseTargets();
        if (SkipOp("=")) {
          s->kind = StmtKind::kSet;
          s->expr = ParseTuple(false);
          ExpectBlockEnd();
        } else {
          if (s->targets.size() != 1) Unexpected("'='");
          s->kind = StmtKind::kSetBlock;
          s->name = s->targets[0];
          ExpectBlockEnd();
          s->body = ParseBody({"endset"}, &end);
          ExpectBlockEnd();
        }
      }
    } else if (kw == "macro") {
      s->kind = StmtKind::kMacro;
      s->name = ExpectName();
      s->params = ParseParams();
      ExpectBlockEnd();
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = ParseBody({"endmacro"}, &end);
      loop_depth_ = saved;
      ExpectBlockEnd();
    } else if (kw == "call") {
      s->kind = StmtKind::kCallBlock;
      if (IsOp("(")) s->params = ParseParams();
      s->expr = ParseExpression();
      if (s->expr->kind != ExprKind::kCall) FailAt(JinjaErrc::kSyntax, s->pos, "expected a call after 'call'");
      ExpectBlockEnd();
      s->body = ParseBody({"endcall"}, &end);
      ExpectBlockEnd();
    } else if (kw == "filter") {
      s->kind = StmtKind::kFilterBlock;
      ExprPtr base = Make(ExprKind::kName, s->pos);
      base->name = kBodyVar;
      s->expr = ParseFilters(std::move(base), /*first_without_pipe=*/true);
      ExpectBlockEnd();
      s->body = ParseBody({"endfilter"}, &end);
      ExpectBlockEnd();
    } else if (kw == "with") {
      s->kind = StmtKind::kWith;
      while (Cur().kind != Tok::kBlockEnd) {
        if (!s->targets.empty()) ExpectOp(",");
        s->targets.push_back(ExpectName());
        ExpectOp("=");
        s->values.push_back(ParseExpression());
      }
      ExpectBlockEnd();
      s->body = ParseBody({"endwith"}, &end);
      ExpectBlockEnd();
    } else if (kw == "break" || kw == "continue") {
      if (loop_depth_ == 0) FailAt(JinjaErrc::kSyntax, s->pos, "'" + kw + "' outside of a loop");
      s->kind = kw == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      ExpectBlockEnd();
    } else if (kw == "generation") {
      // transformers' assistant-mask marker: renders its body in place.
      s->kind = StmtKind::kScope;
      ExpectBlockEnd();
      s->body = ParseBody({"endgeneration"}, &end);
      ExpectBlockEnd();
    } else {
      FailAt(JinjaErrc::kSyntax, s->pos, "unknown or unsupported tag '" + kw + "'");
    }
    return s;
  }

  // ParseTargets: name, or names separated by commas (optionally in parentheses).
  std::vector<std::string> ParseTargets() {
    std::vector<std::string> out;
    bool paren = SkipOp("(");
    out.push_back(ExpectName());
    while (SkipOp(",")) {
      if (Cur().kind != Tok::kName) break;
      out.push_back(ExpectName());
    }
    if (paren) ExpectOp(")");
    return out;
  }

  std::vector<Param> ParseParams() {
    std::vector<Param> out;
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!out.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      Param p;
      p.name = ExpectName();
      if (SkipOp("=")) p.default_value = ParseExpression();
      out.push_back(std::move(p));
    }
    ExpectOp(")");
    return out;
  }

  // --- expressions ----------------------------------------------------------------
  // ParseTuple: an expression, or a comma-separated tuple of them.
  ExprPtr ParseTuple(bool allow_trailing_output, bool with_condexpr = true) {
    (void)allow_trailing_output;
    Pos pos = Cur().pos;
    ExprPtr first = with_condexpr ? ParseExpression() : ParseOr();
    if (!IsOp(",")) return first;
    ExprPtr tup = Make(ExprKind::kTuple, pos);
    tup->kids.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Cur().kind == Tok::kBlockEnd || Cur().kind == Tok::kVarEnd || IsOp(")")) break;
      tup->kids.push_back(with_condexpr ? ParseExpression() : ParseOr());
    }
    return tup;
  }

  ExprPtr ParseExpression() {
    ChainGuard chain(this);
    DepthGuard g(this);
    Pos pos = Cur().pos;
    ExprPtr e = ParseOr();
    while (SkipName("if")) {
      chain.Deeper();
      ExprPtr c = Make(ExprKind::kCond, pos);
      c->kids.push_back(std::move(e));
      c->kids.push_back(ParseOr());
      c->kids.push_back(SkipName("else") ? ParseExpression() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr ParseOr() {
    ChainGuard chain(this);
    ExprPtr l = ParseAnd();
    while (IsName("or")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      Next();
      ExprPtr e = Make(ExprKind::kOr, pos);
      e->kids.push_back(std::move(l));
      e->kids.push_back(ParseAnd());
      l = std::move(e);
    }
    return l;
  }

  ExprPtr ParseAnd() {
    ChainGuard chain(this);
    ExprPtr l = ParseNot();
    while (IsName("and")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      Next();
      ExprPtr e = Make(ExprKind::kAnd, pos);
      e->kids.push_back(std::move(l));
      e->kids.push_back(ParseNot());
      l = std::move(e);
    }
    return l;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard g(this);
      ExprPtr e = Make(ExprKind::kNot, Cur().pos);
      Next();
      e->kids.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    ChainGuard chain(this);
    Pos pos = Cur().pos;
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    for (;;) {
      chain.Deeper();
      std::string op;
      if (Cur().kind == Tok::kOp && (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" ||
                                     Cur().text == ">" || Cur().text == "<=" || Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().kind == Tok::kName && Peek().text == "in") {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(ExprKind::kCompare, pos);
        cmp->kids.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->kids.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr Binary(std::string op, Pos pos, ExprPtr l, ExprPtr r) {
    ExprPtr e = Make(ExprKind::kBinary, pos);
    e->name = std::move(op);
    e->kids.push_back(std::move(l));
    e->kids.push_back(std::move(r));
    return e;
  }

  ExprPtr ParseMath1() {
    ChainGuard chain(this);
    ExprPtr l = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      std::string op = Cur().text;
      Next();
      l = Binary(op, pos, std::move(l), ParseConcat());
    }
    return l;
  }

  ExprPtr ParseConcat() {
    ChainGuard chain(this);
    ExprPtr l = ParseMath2();
    while (IsOp("~")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      Next();
      l = Binary("~", pos, std::move(l), ParseMath2());
    }
    return l;
  }

  ExprPtr ParseMath2() {
    ChainGuard chain(this);
    ExprPtr l = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      std::string op = Cur().text;
      Next();
      l = Binary(op, pos, std::move(l), ParsePow());
    }
    return l;
  }

  ExprPtr ParsePow() {
    ChainGuard chain(this);
    ExprPtr l = ParseUnary(true);
    while (IsOp("**")) {
      chain.Deeper();
      Pos pos = Cur().pos;
      Next();
      l = Binary("**", pos, std::move(l), ParseUnary(true));
    }
    return l;
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard g(this);
    Pos pos = Cur().pos;
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      node = Make(IsOp("-") ? ExprKind::kNeg : ExprKind::kPos, pos);
      Next();
      node->kids.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilters(std::move(node), false);
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& tok = Cur();
    Pos pos = tok.pos;
    if (tok.kind == Tok::kName) {
      const std::string& n = tok.text;
      ExprPtr e = Make(ExprKind::kLiteral, pos);
      if (n == "true" || n == "True") {
        e->literal = Value::Bool(true);
      } else if (n == "false" || n == "False") {
        e->literal = Value::Bool(false);
      } else if (n == "none" || n == "None") {
        e->literal = Value::None();
      } else {
        e->kind = ExprKind::kName;
        e->name = n;
      }
      Next();
      return e;
    }
    if (tok.kind == Tok::kString) {
      std::string s;
      while (Cur().kind == Tok::kString) {  // adjacent literals concatenate
        s += Cur().text;
        Next();
      }
      ExprPtr e = Make(ExprKind::kLiteral, pos);
      e->literal = Value::String(Str::Template(std::move(s)));
      return e;
    }
    if (tok.kind == Tok::kInt || tok.kind == Tok::kFloat) {
      ExprPtr e = Make(ExprKind::kLiteral, pos);
      e->literal = tok.kind == Tok::kInt ? Value::Int(tok.i) : Value::Float(tok.f);
      Next();
      return e;
    }
    if (SkipOp("(")) {
      if (SkipOp(")")) return Make(ExprKind::kTuple, pos);
      ExprPtr first = ParseExpression();
      if (SkipOp(")")) return first;
      ExprPtr tup = Make(ExprKind::kTuple, pos);
      tup->kids.push_back(std::move(first));
      while (SkipOp(",")) {
        if (IsOp(")")) break;
        tup->kids.push_back(ParseExpression());
      }
      ExpectOp(")");
      return tup;
    }
    if (SkipOp("[")) {
      ExprPtr e = Make(ExprKind::kList, pos);
      while (!IsOp("]")) {
        if (!e->kids.empty()) ExpectOp(",");
        if (IsOp("]")) break;
        e->kids.push_back(ParseExpression());
      }
      ExpectOp("]");
      return e;
    }
    if (SkipOp("{")) {
      ExprPtr e = Make(ExprKind::kDict, pos);
      while (!IsOp("}")) {
        if (!e->kids.empty()) ExpectOp(",");
        if (IsOp("}")) break;
        e->kids.push_back(ParseExpression());
        ExpectOp(":");
        e->kids.push_back(ParseExpression());
      }
      ExpectOp("}");
      return e;
    }
    Unexpected("an expression");
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    ChainGuard chain(this);
    for (;;) {
      chain.Deeper();
      Pos pos = Cur().pos;
      if (SkipOp(".")) {
        if (Cur().kind == Tok::kInt) {
          ExprPtr e = Make(ExprKind::kItem, pos);
          ExprPtr idx = Make(ExprKind::kLiteral, pos);
          idx->literal = Value::Int(Cur().i);
          Next();
          e->kids.push_back(std::move(node));
          e->kids.push_back(std::move(idx));
          node = std::move(e);
          continue;
        }
        ExprPtr e = Make(ExprKind::kAttr, pos);
        e->name = ExpectName();
        e->kids.push_back(std::move(node));
        node = std::move(e);
      } else if (SkipOp("[")) {
        node = ParseSubscript(std::move(node), pos);
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node), ExprKind::kCall, "");
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr obj, Pos pos) {
    ExprPtr parts[3];
    bool slice = false;
    int k = 0;
    for (;;) {
      if (IsOp(":")) {
        slice = true;
        Next();
        if (++k > 2) Unexpected("']'");
        continue;
      }
      if (IsOp("]")) break;
      if (parts[k]) Unexpected("':' or ']'");
      parts[k] = ParseExpression();
    }
    ExpectOp("]");
    if (!slice) {
      if (!parts[0]) Unexpected("an index");
      ExprPtr e = Make(ExprKind::kItem, pos);
      e->kids.push_back(std::move(obj));
      e->kids.push_back(std::move(parts[0]));
      return e;
    }
    ExprPtr e = Make(ExprKind::kSlice, pos);
    e->kids.push_back(std::move(obj));
    for (auto& p : parts) e->kids.push_back(std::move(p));
    return e;
  }

  // ParseCall reads "(args, key=value)" into a node of `kind` whose kids[0] is `base`.
  ExprPtr ParseCall(ExprPtr base, ExprKind kind, std::string name) {
    ExprPtr e = Make(kind, kind == ExprKind::kCall ? base->pos : Cur().pos);
    e->name = std::move(name);
    e->kids.push_back(std::move(base));
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) ExpectOp(",");
      first = false;
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) FailAt(JinjaErrc::kSyntax, Cur().pos, "*args and **kwargs are not supported");
      if (Cur().kind == Tok::kName && Peek().kind == Tok::kOp && Peek().text == "=") {
        std::string key = ExpectName();
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression());
      } else {
        if (!e->kwargs.empty()) FailAt(JinjaErrc::kSyntax, Cur().pos, "positional argument after keyword argument");
        e->kids.push_back(ParseExpression());
      }
    }
    ExpectOp(")");
    return e;
  }

  std::string DottedName() {
    std::string n = ExpectName();
    while (IsOp(".") && Peek().kind == Tok::kName) {
      Next();
      n += "." + ExpectName();
    }
    return n;
  }

  ExprPtr ParseFilters(ExprPtr node, bool first_without_pipe) {
    ChainGuard chain(this);
    for (;;) {
      chain.Deeper();
      if (first_without_pipe || IsOp("|")) {
        if (!first_without_pipe) Next();
        first_without_pipe = false;
        Pos pos = Cur().pos;
        std::string name = DottedName();
        if (IsOp("(")) {
          node = ParseCall(std::move(node), ExprKind::kFilter, name);
        } else {
          ExprPtr e = Make(ExprKind::kFilter, pos);
          e->name = name;
          e->kids.push_back(std::move(node));
          node = std::move(e);
        }
      } else if (IsName("is")) {
        Pos pos = Cur().pos;
        Next();
        bool negated = SkipName("not");
        std::string name = DottedName();
        ExprPtr e;
        if (IsOp("(")) {
          e = ParseCall(std::move(node), ExprKind::kTest, name);
        } else {
          e = Make(ExprKind::kTest, pos);
          e->name = name;
          e->kids.push_back(std::move(node));
          const Token& c = Cur();
          bool starts_arg = c.kind == Tok::kName || c.kind == Tok::kString || c.kind == Tok::kInt ||
                            c.kind == Tok::kFloat || (c.kind == Tok::kOp && (c.text == "(" || c.text == "[" ||
                                                                             c.text == "{"));
          if (starts_arg && !(c.kind == Tok::kName && (c.text == "else" || c.text == "or" || c.text == "and"))) {
            if (c.kind == Tok::kName && c.text == "is") FailAt(JinjaErrc::kSyntax, c.pos, "you cannot chain multiple tests with is");
            e->kids.push_back(ParsePostfix(ParsePrimary()));
          }
        }
        e->pos = pos;
        e->negated = negated;
        node = std::move(e);
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node), ExprKind::kCall, "");
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int max_depth_;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body Parse(const std::vector<Token>& tokens, int max_depth) { return Parser(tokens, max_depth).Run(); }

}  // namespace cllm::jinja
