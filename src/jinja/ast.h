// ast.h — the parsed template: statements and expressions.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/error.h"
#include "jinja/value.h"

namespace cllm::jinja {

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // kids
  kTuple,     // kids (a tuple is a list to us)
  kDict,      // kids: key, value, key, value, ...
  kAttr,      // kids[0] . name
  kItem,      // kids[0] [ kids[1] ]
  kSlice,     // kids[0] [ kids[1] : kids[2] : kids[3] ] (null kids are omitted bounds)
  kCall,      // kids[0] ( kids[1..] , kwargs )
  kFilter,    // kids[0] | name ( kids[1..] , kwargs )
  kTest,      // kids[0] is [not] name ( kids[1..] )
  kNot,       // not kids[0]
  kNeg,       // - kids[0]
  kPos,       // + kids[0]
  kBinary,    // kids[0] op kids[1]: + - * / // % ** ~
  kAnd,
  kOr,
  kCompare,   // kids[0] (ops[k] kids[k+1])...
  kCond,      // kids[0] if kids[1] else kids[2] (kids[2] may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  Pos pos;
  Value literal;
  std::string name;              // kName, kAttr, kFilter, kTest; kBinary: the operator
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", ">", "<=", ">=", "in", "not in"
  std::vector<ExprPtr> kids;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;          // kTest: "is not"
};

enum class StmtKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches, else_body
  kFor,       // targets in expr [if cond] body [else else_body]
  kSet,       // targets (or ns.attr) = expr
  kSetBlock,  // {% set name %}body{% endset %}
  kMacro,     // name(params) body
  kCallBlock, // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter expr %}body{% endfilter %}: expr's filters applied to body
  kWith,      // {% with targets = exprs %}body{% endwith %}
  kBreak,
  kContinue,
  kScope,     // a body rendered in place (generation blocks)
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Param {
  std::string name;
  ExprPtr default_value;  // null: required
};

struct Stmt {
  StmtKind kind;
  Pos pos;
  std::string text;                  // kText
  std::string name;                  // kMacro; kSet on a namespace: the variable; kSetBlock
  std::string attr;                  // kSet ns.attr
  std::vector<std::string> targets;  // kFor, kSet, kWith
  ExprPtr expr;                      // kOutput, kFor iterable, kSet value, kCallBlock call
  ExprPtr cond;                      // kFor filter
  std::vector<ExprPtr> values;       // kWith
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body;
  Body else_body;
  std::vector<Param> params;         // kMacro, kCallBlock
};

}  // namespace cllm::jinja
