"""A small, safe expression language for risk rules and credit-limit formulas.

An expression is parsed with :mod:`ast` (``mode="eval"``) and accepted only if every node is in the
allow-list below; it is then evaluated by this module's own tree walker. Python's ``eval`` is never
used. Allowed:

- literals: integers (``200000_00``), decimals (``0.7``, read exactly as :class:`~decimal.Decimal`,
  never as a float), strings, ``True`` / ``False``, and lists/tuples/sets of literals (right of ``in``);
- fact names (:data:`FACTS`);
- ``and``, ``or``, ``not``; comparisons ``== != < <= > >=`` (chains too), ``in``, ``not in``;
- arithmetic ``+ - * / // %`` and unary ``-`` on numbers; ``a if condition else b``;
- calls to :data:`FUNCTIONS` only: ``min(...)``, ``max(...)``, ``abs(x)``, ``recent_applications(days)``.

Everything else — attribute access, subscripts, ``**``, lambdas, comprehensions, any other call,
``__import__`` — is refused at save time with a Chinese message naming the problem and its column.
A light type check runs too (numbers, text, yes/no): ``age + "x"`` or a rule that is not a condition
is refused before it can be stored.

At evaluation a fact whose value is unknown (None) raises :class:`MissingFact`; any other failure
(division by zero, a value of the wrong type) raises :class:`EvaluationError`. The caller decides
what those mean (risk evaluation sends the case to manual review).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from lending.product_exceptions import InvalidRuleExpression

__all__ = [
    "FACTS", "FUNCTIONS", "EvaluationError", "Expression", "MissingFact", "compile_expression", "evaluate",
]

NUM, STR, BOOL = "number", "text", "bool"
_TYPE_LABELS = {NUM: "数值", STR: "文本", BOOL: "是/否"}

# fact name -> (type, Chinese label)
FACTS: dict[str, tuple[str, str]] = {
    "age": (NUM, "年龄（周岁，按身份证号计算）"),
    "income_monthly": (NUM, "月收入（分）"),
    "occupation": (STR, "职业"),
    "debt_ratio": (NUM, "负债率（0.5 即 50%）"),
    "credit_score": (NUM, "征信评分"),
    "overdue_count": (NUM, "征信逾期次数"),
    "blacklisted": (BOOL, "是否黑名单"),
    "region": (STR, "地区"),
    "customer_type": (STR, "客户类型"),
    "amount": (NUM, "申请金额（分）"),
    "term": (NUM, "申请期限（月）"),
    # from the customer's qualification profile (crm.qualification)
    "employment_type": (STR, "职业身份（employee 企业员工、civil_servant 公务员、self_employed 个体户、"
                             "business_owner 企业主、freelancer 自由职业、retired 退休、unemployed 无业）"),
    "social_insurance_months": (NUM, "社保缴纳月数"),
    "provident_fund_months": (NUM, "公积金缴纳月数"),
    "has_property": (BOOL, "是否有房产"),
    "has_car": (BOOL, "是否有车辆"),
    "credit_level": (STR, "征信情况（good 良好、blank 白户、minor 轻微逾期、current 当前逾期、serious 严重逾期）"),
    "credit_overdue_count": (NUM, "近两年逾期次数（资质填写）"),
    "credit_queries_6m": (NUM, "近半年征信查询次数（资质填写）"),
    "industry": (STR, "所属行业"),
}

# function name -> (argument count range, Chinese label); all take and return numbers
FUNCTIONS: dict[str, tuple[int, int, str]] = {
    "min": (2, 10, "最小值"),
    "max": (2, 10, "最大值"),
    "abs": (1, 1, "绝对值"),
    "recent_applications": (1, 1, "最近 N 天内的其他申请数"),
}

MAX_LENGTH = 500
MAX_NODES = 200
MAX_DAYS = 3650

_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_NODE_LABELS = {
    ast.Attribute: "属性访问（.）", ast.Subscript: "下标（[]）", ast.Lambda: "lambda", ast.Pow: "乘方（**）",
    ast.ListComp: "推导式", ast.SetComp: "推导式", ast.DictComp: "推导式", ast.GeneratorExp: "推导式",
    ast.Dict: "字典", ast.NamedExpr: "赋值（:=）", ast.JoinedStr: "格式化字符串", ast.Starred: "星号展开",
    ast.Await: "await", ast.BitAnd: "位运算", ast.BitOr: "位运算", ast.BitXor: "位运算", ast.LShift: "位运算",
    ast.RShift: "位运算", ast.Is: "is", ast.IsNot: "is not", ast.Invert: "位运算", ast.MatMult: "@",
}


class MissingFact(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class EvaluationError(Exception):
    """The expression could not be evaluated with these facts (the message is Chinese)."""


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.Expression
    type: str  # NUM | STR | BOOL
    facts: frozenset[str]
    calls: frozenset[str]


def compile_expression(source: str, *, expect: str | None = None, label: str = "表达式",
                       facts: Mapping[str, tuple[str, str]] | None = None) -> Expression:
    """Parse and check ``source``; ``expect`` is BOOL for a rule, NUM for a credit-limit formula. ``facts``: the
    names the expression may use (default :data:`FACTS`, the applicant's; post-loan early warning has its own)."""
    text = (source or "").strip()
    if not text:
        raise InvalidRuleExpression(f"{label}不能为空")
    if len(text) > MAX_LENGTH:
        raise InvalidRuleExpression(f"{label}过长（最多 {MAX_LENGTH} 个字符）")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        column = f"第 {exc.offset} 个字符附近" if exc.offset else "某处"
        raise InvalidRuleExpression(f"{label}语法错误：{column}，请检查括号、引号和运算符") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise InvalidRuleExpression(f"{label}过于复杂（{nodes} 个节点，最多 {MAX_NODES} 个）")
    checker = _Checker(text, label, FACTS if facts is None else facts)
    kind = checker.check(tree.body)
    if expect is not None and kind != expect:
        wanted = "一个条件（结果为是/否）" if expect == BOOL else "一个数值（金额，分）"
        raise InvalidRuleExpression(f"{label}须是{wanted}，而不是{_TYPE_LABELS[kind]}")
    return Expression(text, tree, kind, frozenset(checker.facts), frozenset(checker.calls))


class _Checker:
    def __init__(self, source: str, label: str, facts: Mapping[str, tuple[str, str]]) -> None:
        self.source = source
        self.label = label
        self.known = facts
        self.facts: set[str] = set()
        self.calls: set[str] = set()

    def fail(self, node: ast.AST, problem: str) -> InvalidRuleExpression:
        column = getattr(node, "col_offset", None)
        where = f"第 {column + 1} 个字符" if column is not None else "某处"
        snippet = ast.get_source_segment(self.source, node) if hasattr(node, "lineno") else None
        shown = f"「{snippet[:30]}」" if snippet else ""
        return InvalidRuleExpression(f"{self.label}不正确：{where}{shown}{problem}", column=column)

    def expect(self, node: ast.expr, kind: str, what: str) -> None:
        got = self.check(node)
        if got != kind:
            raise self.fail(node, f"：{what}须是{_TYPE_LABELS[kind]}，这里是{_TYPE_LABELS[got]}")

    def check(self, node: ast.expr) -> str:  # noqa: C901, PLR0911, PLR0912 - one branch per allowed node
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return BOOL
            if isinstance(value, int | float):
                return NUM
            if isinstance(value, str):
                return STR
            raise self.fail(node, "：不支持这种常量")
        if isinstance(node, ast.Name):
            if node.id in self.known:
                self.facts.add(node.id)
                return self.known[node.id][0]
            if node.id in FUNCTIONS:
                raise self.fail(node, f"：{node.id} 是函数，须带括号调用")
            known = "、".join(self.known)
            raise self.fail(node, f"：未知的字段「{node.id}」（可用字段：{known}）")
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.expect(value, BOOL, "and / or 两边")
            return BOOL
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self.expect(node.operand, BOOL, "not 后面")
                return BOOL
            if isinstance(node.op, ast.USub | ast.UAdd):
                self.expect(node.operand, NUM, "负号后面")
                return NUM
            raise self.fail(node, f"：不允许使用{_NODE_LABELS.get(type(node.op), '此运算')}")
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITH):
                raise self.fail(node, f"：不允许使用{_NODE_LABELS.get(type(node.op), '此运算')}")
            self.expect(node.left, NUM, "算术运算的两边")
            self.expect(node.right, NUM, "算术运算的两边")
            return NUM
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            self.expect(node.test, BOOL, "if 后的条件")
            kind = self.check(node.body)
            self.expect(node.orelse, kind, "else 两边的结果类型")
            return kind
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            raise self.fail(node, "：列表只能用在 in / not in 的右边")
        raise self.fail(node, f"：不允许使用{_NODE_LABELS.get(type(node), '这种写法')}")

    def _compare(self, node: ast.Compare) -> str:
        if len(node.ops) > 1 and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            raise self.fail(node, "：in / not in 不能和其他比较连写，请用 and 分开")
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, _COMPARE):
                raise self.fail(node, f"：不允许使用{_NODE_LABELS.get(type(op), '此比较')}")
            if isinstance(op, ast.In | ast.NotIn):
                kind = self.check(left)
                if not isinstance(right, ast.List | ast.Tuple | ast.Set) or not right.elts:
                    raise self.fail(right, "：in 的右边须是一个非空列表，如 [\"广东\", \"上海\"]")
                for item in right.elts:
                    if not isinstance(item, ast.Constant):
                        raise self.fail(item, "：列表中只能是常量")
                    self.expect(item, kind, "列表中的值")
            else:
                kind = self.check(left)
                self.expect(right, kind, "比较两边")
                if isinstance(op, _ORDERING) and kind != NUM:
                    raise self.fail(node, "：大小比较只能用于数值")
            left = right
        return BOOL

    def _call(self, node: ast.Call) -> str:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "：只能调用允许的函数（min、max、abs、recent_applications）")
        name = node.func.id
        if name not in FUNCTIONS:
            allowed = "、".join(FUNCTIONS)
            raise self.fail(node, f"：不允许调用函数「{name}」（可用函数：{allowed}）")
        if node.keywords:
            raise self.fail(node, "：函数不接受命名参数")
        low, high, _ = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low}–{high}"
            raise self.fail(node, f"：{name} 需要 {count} 个参数")
        for arg in node.args:
            self.expect(arg, NUM, f"{name} 的参数")
        if name == "recent_applications":
            arg = node.args[0]
            if not (isinstance(arg, ast.Constant) and type(arg.value) is int and 1 <= arg.value <= MAX_DAYS):
                raise self.fail(node, f"：recent_applications 的参数须是 1 到 {MAX_DAYS} 之间的整数天数")
        self.calls.add(name)
        return NUM


# --- evaluation ------------------------------------------------------------------------------------


def _number(value: Any) -> int | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise EvaluationError(f"需要数值，得到：{value!r}")
    return value


def evaluate(expression: Expression, facts: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """Evaluate a compiled expression; facts are ints, Decimals, strings or bools (None = unknown)."""
    return _Evaluator(expression.source, facts, functions or {}).eval(expression.tree.body)


class _Evaluator:
    def __init__(self, source: str, facts: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]) -> None:
        self.source = source
        self.facts = facts
        self.functions = functions

    def eval(self, node: ast.expr) -> Any:  # noqa: C901, PLR0911, PLR0912 - mirrors the checker
        if isinstance(node, ast.Constant):
            if isinstance(node.value, float):  # read the literal exactly, never through a float
                return Decimal(ast.get_source_segment(self.source, node) or repr(node.value))
            return node.value
        if isinstance(node, ast.Name):
            value = self.facts.get(node.id)
            if value is None:
                raise MissingFact(node.id)
            if isinstance(value, float):
                raise EvaluationError(f"字段「{node.id}」不能是浮点数")
            return value
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self.truth(v) for v in node.values)
            return any(self.truth(v) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return not self.truth(node.operand)
            value = _number(self.eval(node.operand))
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.arith(node.op, _number(self.eval(node.left)), _number(self.eval(node.right)))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.truth(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined] - checked at compile time
            args = [_number(self.eval(a)) for a in node.args]
            if name == "min":
                return min(args)
            if name == "max":
                return max(args)
            if name == "abs":
                return abs(args[0])
            function = self.functions.get(name)
            if function is None:
                raise EvaluationError(f"函数「{name}」不可用")
            return function(*args)
        raise EvaluationError("表达式包含不允许的写法")  # unreachable for a compiled expression

    def truth(self, node: ast.expr) -> bool:
        value = self.eval(node)
        if not isinstance(value, bool):
            raise EvaluationError(f"需要是/否，得到：{value!r}")
        return value

    @staticmethod
    def arith(op: ast.operator, left: int | Decimal, right: int | Decimal) -> int | Decimal:
        try:
            if isinstance(op, ast.Add):
                return left + right
            if isinstance(op, ast.Sub):
                return left - right
            if isinstance(op, ast.Mult):
                return left * right
            if isinstance(op, ast.Div):
                return Decimal(left) / Decimal(right)
            if isinstance(op, ast.FloorDiv):
                return left // right
            return left % right
        except (ZeroDivisionError, DivisionByZero, InvalidOperation):
            raise EvaluationError("除数为零") from None

    def compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                items = [self.eval(item) for item in right_node.elts]  # type: ignore[attr-defined]
                ok = (left in items) == isinstance(op, ast.In)
                right = None
            else:
                right = self.eval(right_node)
                if isinstance(op, _ORDERING):
                    _number(left), _number(right)
                ok = _OPS[type(op)](left, right)
            if not ok:
                return False
            left = right
        return True


_OPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
}
