"""Call scripts: a tree of stages stored as JSON, validated, rendered with lead data (pure).

`Script.body` looks like::

    {"start": "opening",
     "stages": {"opening": {"kind": "opening", "title": "...", "text": "Hello {lead.name}, ...",
                            "hints": ["..."],
                            "branches": [{"label": "...", "to": "permission", "when": <condition>}],
                            "recommend": [{"when": <condition>, "to": "...", "why": "..."}],
                            "objection": "price"}}}

Conditions are data, never code: ``{"field": "custom.current_services", "op": "contains", "value":
"mobile"}``, ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``. String comparisons ignore
case. A field is a whitelisted Lead column or ``custom.<key>[.<key>...]`` (read through mappings only),
so no other attribute of anything is ever touched. Placeholders with no value render as a visible
marker ("〔客户姓名〕" / "[lead name]") instead of failing; nothing is escaped here (templates do that).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from core.errors import NotFound, ValidationFailed

KINDS: Final = frozenset(
    {"opening", "permission", "purpose", "needs", "presentation", "objection", "close", "thanks"}
    | {"gatekeeper"}
)
OBJECTIONS: Final = frozenset(
    {"send_materials", "what_do_you_do", "call_later", "think_about_it", "company_criticism", "price"}
    | {"big_carrier", "complaint"}
)
_COMPARE: Final = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
OPS: Final = frozenset({"eq", "in", "contains", "exists", *_COMPARE})
LEAD_FIELDS: Final = frozenset(
    {"name", "company", "segment", "region", "timezone", "grade", "man_money", "man_authority"}
    | {"man_need", "custom", "status", "attempts", "priority"}
)
MAX_DEPTH: Final = 12
# placeholder -> (zh marker label, en marker label); `lead.custom.<key>` is also accepted.
MARKERS: Final[Mapping[str, tuple[str, str]]] = {
    "lead.name": ("客户姓名", "lead name"),
    "lead.company": ("客户公司", "lead company"),
    "lead.segment": ("客户类型", "segment"),
    "lead.region": ("地区", "region"),
    "lead.grade": ("意向等级", "grade"),
    "agent.name": ("坐席姓名", "agent name"),
    "campaign.company_name": ("本公司名称", "our company name"),
    "campaign.callback_number": ("回拨号码", "callback number"),
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CUSTOM = re.compile(r"lead\.custom(?:\.[A-Za-z0-9_]+)+")
_STAGE_KEYS: Final = frozenset({"kind", "title", "text", "hints", "branches", "recommend", "objection"})
_TOP_KEYS: Final = frozenset({"start", "stages", "title", "language", "description"})
_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # e.g. "stages.close.branches[1].to"
    code: str  # type | missing | unknown_key | unknown_kind | unknown_target | unknown_placeholder | ...
    message: str


class ScriptInvalid(ValidationFailed):
    error_id = "script_invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            f"the script has {len(self.problems)} problem(s)",
            details=[{"path": p.path, "code": p.code, "message": p.message} for p in self.problems],
        )


@dataclass(frozen=True, slots=True)
class FieldTest:
    field: tuple[str, ...]
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Group:
    mode: str  # all | any | not
    parts: tuple[Condition, ...]


Condition = FieldTest | Group


@dataclass(frozen=True, slots=True)
class Branch:
    label: str
    to: str
    when: Condition | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    when: Condition
    to: str
    why: str


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    kind: str
    title: str
    text: str
    hints: tuple[str, ...] = ()
    branches: tuple[Branch, ...] = ()
    recommend: tuple[Rule, ...] = ()
    objection: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptTree:
    start: str
    stages: Mapping[str, Stage]
    title: str = ""
    language: str = ""

    def stage(self, stage_id: str) -> Stage:
        found = self.stages.get(stage_id)
        if found is None:
            raise NotFound(f"no stage {stage_id!r} in this script", details={"stage": stage_id})
        return found


def _number(v: object) -> int | float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    try:
        return float(v.strip()) if isinstance(v, str) else None
    except ValueError:
        return None


def _valid_field(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "custom":
        return all(parts)
    return len(parts) == 1 and parts[0] in LEAD_FIELDS


def parse_condition(raw: object, path: str, out: list[Problem], depth: int = 0) -> Condition | None:
    """Check one condition, appending problems to `out`; returns None when it is unusable."""
    if depth > MAX_DEPTH:
        out.append(Problem(path, "too_deep", f"conditions nest deeper than {MAX_DEPTH} levels"))
        return None
    if not isinstance(raw, Mapping):
        out.append(Problem(path, "bad_condition", "a condition is an object"))
        return None
    modes = [m for m in ("all", "any", "not") if m in raw]
    if modes:
        mode = modes[0]
        if len(raw) != 1:
            out.append(Problem(path, "bad_condition", f"{mode!r} must be the only key of its condition"))
            return None
        items: object = [raw[mode]] if mode == "not" else raw[mode]
        if not isinstance(items, list) or not items:
            out.append(Problem(f"{path}.{mode}", "bad_condition", "expected a non-empty list of conditions"))
            return None
        sub = [f"{path}.not"] if mode == "not" else [f"{path}.{mode}[{i}]" for i in range(len(items))]
        parts = [parse_condition(item, p, out, depth + 1) for item, p in zip(items, sub, strict=True)]
        return None if any(p is None for p in parts) else Group(mode, tuple(p for p in parts if p))
    ok = True
    for key in sorted(str(k) for k in raw if k not in ("field", "op", "value")):
        out.append(Problem(f"{path}.{key}", "unknown_key", f"unknown condition key {key!r}"))
        ok = False
    field, op, value = raw.get("field"), raw.get("op"), raw.get("value", _MISSING)
    if not isinstance(field, str) or not _valid_field(field):
        out.append(Problem(f"{path}.field", "bad_field", f"not a lead field: {field!r}"))
        ok = False
    if not isinstance(op, str) or op not in OPS:
        out.append(Problem(f"{path}.op", "unknown_op", f"unknown operator {op!r}; use one of {sorted(OPS)}"))
        return None
    if op == "exists":
        value = True if value is _MISSING else value
        wrong = not isinstance(value, bool)
    elif op == "in":
        wrong = not isinstance(value, list)
    elif op == "contains":
        wrong = not isinstance(value, str | int | float | bool)
    elif op == "eq":
        wrong = value is _MISSING
    else:
        wrong = _number(value) is None or isinstance(value, str)
    if wrong:
        out.append(Problem(f"{path}.value", "bad_value", f"value {value!r} does not suit operator {op!r}"))
    if not ok or wrong:
        return None
    assert isinstance(field, str)
    return FieldTest(tuple(field.split(".")), op, value)


def _dig(root: object, parts: Sequence[str]) -> object:
    """Read a whitelisted top-level field of `root` (mapping or object), then mapping keys only."""
    if root is None or not parts:
        return _MISSING
    head, *rest = parts
    cur = root.get(head, _MISSING) if isinstance(root, Mapping) else getattr(root, head, _MISSING)
    for part in rest:
        if not isinstance(cur, Mapping):
            return _MISSING
        cur = cur.get(part, _MISSING)
    return cur


def _present(v: object) -> bool:
    if v is _MISSING or v is None:
        return False
    return not (isinstance(v, str | list | tuple | dict) and len(v) == 0)


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def evaluate(cond: Condition, lead: object) -> bool:
    """Evaluate a parsed condition against a Lead row or a mapping of lead fields."""
    if isinstance(cond, Group):
        if cond.mode == "all":
            return all(evaluate(c, lead) for c in cond.parts)
        if cond.mode == "any":
            return any(evaluate(c, lead) for c in cond.parts)
        return not evaluate(cond.parts[0], lead)
    actual, want = _dig(lead, cond.field), cond.value
    if cond.op == "exists":
        return _present(actual) is want
    if cond.op == "eq":
        return _same(actual, want)
    if cond.op == "in":
        return any(_same(actual, w) for w in want)
    if cond.op == "contains":
        if isinstance(actual, str | Mapping):  # substring of text, or key of an object
            text = actual.casefold() if isinstance(actual, str) else actual
            return isinstance(want, str) and (want.casefold() if isinstance(actual, str) else want) in text
        return isinstance(actual, list | tuple) and any(_same(item, want) for item in actual)
    number = _number(actual)
    return number is not None and bool(_COMPARE[cond.op](number, want))


def known_placeholder(name: str) -> bool:
    return name in MARKERS or _CUSTOM.fullmatch(name) is not None


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_text(value: object, path: str, out: list[Problem], code: str = "type") -> str:
    if not isinstance(value, str) or not value.strip():
        out.append(Problem(path, code, "expected non-empty text"))
        return ""
    for m in _PLACEHOLDER.finditer(value):
        if not known_placeholder(m.group(1)):
            out.append(Problem(path, "unknown_placeholder", f"unknown placeholder {m.group(0)}"))
    return value


def _text(raw: Mapping[Any, Any], key: str, path: str, out: list[Problem], required: bool = True) -> str:
    if key not in raw:
        if required:
            out.append(Problem(_at(path, key), "missing", f"{key} is required"))
        return ""
    return _check_text(raw[key], _at(path, key), out)


def _items(raw: Mapping[Any, Any], key: str, path: str, out: list[Problem]) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        out.append(Problem(f"{path}.{key}", "type", f"{key} must be a list"))
        return []
    return value


def _parse_stage(sid: str, raw: object, path: str, out: list[Problem]) -> Stage | None:
    if not isinstance(raw, Mapping):
        out.append(Problem(path, "type", "a stage is an object"))
        return None
    for key in sorted(str(k) for k in raw if k not in _STAGE_KEYS):
        out.append(Problem(f"{path}.{key}", "unknown_key", f"unknown stage key {key!r}"))
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        out.append(Problem(f"{path}.kind", "unknown_kind", f"kind must be one of {sorted(KINDS)}"))
        kind = ""
    title, text = _text(raw, "title", path, out), _text(raw, "text", path, out)
    hints = [_check_text(h, f"{path}.hints[{i}]", out) for i, h in enumerate(_items(raw, "hints", path, out))]
    branches, rules = [], []
    for key, words in (("branches", ("label", "to", "when")), ("recommend", ("why", "to", "when"))):
        for i, item in enumerate(_items(raw, key, path, out)):
            ip = f"{path}.{key}[{i}]"
            if not isinstance(item, Mapping):
                out.append(Problem(ip, "type", "expected an object"))
                continue
            for k in sorted(str(k) for k in item if k not in words):
                out.append(Problem(f"{ip}.{k}", "unknown_key", f"unknown key {k!r}"))
            say, to = _text(item, words[0], ip, out), _text(item, "to", ip, out)
            if key == "branches":
                when = parse_condition(item["when"], f"{ip}.when", out) if "when" in item else None
                branches.append(Branch(say, to, when))
            elif (cond := parse_condition(item.get("when"), f"{ip}.when", out)) is not None:
                rules.append(Rule(cond, to, say))
    objection = raw.get("objection")
    if objection is not None and (kind != "objection" or not isinstance(objection, str)):
        out.append(Problem(f"{path}.objection", "bad_objection", "only objection stages name an objection"))
        objection = None
    elif isinstance(objection, str) and objection not in OBJECTIONS:
        out.append(Problem(f"{path}.objection", "bad_objection", f"unknown objection {objection!r}"))
    if not branches and kind not in ("thanks", ""):
        out.append(Problem(f"{path}.branches", "dead_end", "only a thanks stage may end the call"))
    return Stage(sid, kind, title, text, tuple(hints), tuple(branches), tuple(rules), objection)


def _walk(start: str, stages: Mapping[str, Stage]) -> frozenset[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in stages:
            continue
        seen.add(sid)
        todo.extend(b.to for b in stages[sid].branches)
        todo.extend(r.to for r in stages[sid].recommend)
    return frozenset(seen)


def reachable(tree: ScriptTree) -> frozenset[str]:
    """Stage ids reachable from the start through branches and recommendations."""
    return _walk(tree.start, tree.stages)


def parse_script(body: object, *, allow_unreachable: bool = False) -> ScriptTree:
    """Validate a script body and build its tree; raises ScriptInvalid listing every problem found."""
    if not isinstance(body, Mapping):
        raise ScriptInvalid([Problem("", "type", "a script body is a JSON object")])
    out: list[Problem] = []
    for key in sorted(str(k) for k in body if k not in _TOP_KEYS):
        out.append(Problem(key, "unknown_key", f"unknown script key {key!r}"))
    title, language = _text(body, "title", "", out, False), _text(body, "language", "", out, False)
    _text(body, "description", "", out, False)
    raw_stages = body.get("stages")
    if not isinstance(raw_stages, Mapping) or not raw_stages:
        out.append(Problem("stages", "missing", "a script needs a non-empty object of stages"))
        raw_stages = {}
    ids = {k for k in raw_stages if isinstance(k, str) and k}
    stages: dict[str, Stage] = {}
    for sid, raw in raw_stages.items():
        if sid not in ids:
            out.append(Problem(f"stages.{sid!r}", "type", "stage ids are non-empty text"))
        elif (stage := _parse_stage(sid, raw, f"stages.{sid}", out)) is not None:
            stages[sid] = stage
    start = body.get("start")
    if not isinstance(start, str) or start not in ids:
        out.append(Problem("start", "unknown_target", f"start stage {start!r} does not exist"))
        start = ""
    for stage in stages.values():
        targets = [("branches", i, b.to) for i, b in enumerate(stage.branches)]
        targets += [("recommend", i, r.to) for i, r in enumerate(stage.recommend)]
        for key, i, to in targets:
            if to and to not in ids:
                out.append(Problem(f"stages.{stage.id}.{key}[{i}].to", "unknown_target", f"no stage {to!r}"))
    if start and not allow_unreachable:
        seen = _walk(start, stages)
        for sid in sorted(set(stages) - seen):
            out.append(Problem(f"stages.{sid}", "unreachable", "no path from the start reaches this stage"))
    if out:
        raise ScriptInvalid(out)
    return ScriptTree(start, stages, title, language)


@dataclass(frozen=True, slots=True)
class RenderContext:
    lead: object = None  # a Lead row or a mapping of its fields
    agent_name: str = ""
    campaign: object = None  # a Campaign row or a mapping with company_name / callback_number
    language: str = "zh-CN"


@dataclass(frozen=True, slots=True)
class Recommendation:
    to: str
    title: str
    why: str


@dataclass(frozen=True, slots=True)
class RenderedBranch:
    label: str
    to: str


@dataclass(frozen=True, slots=True)
class RenderedStage:
    id: str
    kind: str
    title: str
    text: str
    hints: tuple[str, ...]
    branches: tuple[RenderedBranch, ...]
    recommended: tuple[Recommendation, ...]
    objection: str | None = None


def _is_zh(language: str) -> bool:
    return language.lower().replace("_", "-").startswith("zh")


def render_text(template: str, context: RenderContext) -> str:
    """Substitute placeholders; a missing value becomes a visible marker, never an error."""
    zh = _is_zh(context.language)

    def substitute(m: re.Match[str]) -> str:
        name = m.group(1)
        if not known_placeholder(name):
            return m.group(0)
        root, *rest = name.split(".")
        if root == "agent":
            value: object = context.agent_name
        else:
            value = _dig(context.lead if root == "lead" else context.campaign, rest)
        if _present(value):
            if isinstance(value, list | tuple):
                return ("、" if zh else ", ").join(str(v) for v in value)
            return str(value)
        label = MARKERS[name][0 if zh else 1] if name in MARKERS else rest[-1]
        return f"〔{label}〕" if zh else f"[{label}]"

    return _PLACEHOLDER.sub(substitute, template)


def recommend(tree: ScriptTree, stage_id: str, lead: object) -> tuple[Recommendation, ...]:
    """The stage's recommendation rules that hold for `lead`, in script order, one per target."""
    found: dict[str, Recommendation] = {}
    for rule in tree.stage(stage_id).recommend:
        if rule.to not in found and evaluate(rule.when, lead):
            found[rule.to] = Recommendation(rule.to, tree.stage(rule.to).title, rule.why)
    return tuple(found.values())


def render_stage(tree: ScriptTree, stage_id: str, context: RenderContext) -> RenderedStage:
    """A stage ready to show: text filled in, branches whose `when` holds, recommendations with why."""
    stage = tree.stage(stage_id)

    def fill(text: str) -> str:
        return render_text(text, context)

    return RenderedStage(
        id=stage.id,
        kind=stage.kind,
        title=fill(stage.title),
        text=fill(stage.text),
        hints=tuple(fill(h) for h in stage.hints),
        branches=tuple(
            RenderedBranch(fill(b.label), b.to)
            for b in stage.branches
            if b.when is None or evaluate(b.when, context.lead)
        ),
        recommended=tuple(
            Recommendation(r.to, fill(r.title), fill(r.why)) for r in recommend(tree, stage_id, context.lead)
        ),
        objection=stage.objection,
    )


@dataclass(frozen=True, slots=True)
class Visit:
    stage: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ScriptTrail:
    """Stages an agent visited during a call, in order, for QA (stored in Disposition.script_trail)."""

    visits: tuple[Visit, ...] = ()

    def visit(self, stage_id: str, at: datetime) -> ScriptTrail:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValidationFailed("trail timestamps must be timezone-aware", details={"at": str(at)})
        if self.visits and at < self.visits[-1].at:
            raise ValidationFailed("a visit cannot be earlier than the previous one", details={"at": str(at)})
        return ScriptTrail((*self.visits, Visit(stage_id, at)))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(v.stage for v in self.visits)

    def to_json(self) -> list[dict[str, str]]:
        return [{"stage": v.stage, "at": v.at.isoformat()} for v in self.visits]

    @classmethod
    def from_json(cls, data: object) -> ScriptTrail:
        trail = cls()
        if not isinstance(data, list):
            raise ValidationFailed("a script trail is a list of visits")
        for item in data:
            if not (isinstance(item, Mapping) and isinstance(item.get("stage"), str)):
                raise ValidationFailed("each visit has a stage and an ISO timestamp", details=item)
            try:
                at = datetime.fromisoformat(str(item.get("at")))
            except ValueError as exc:
                raise ValidationFailed("bad visit timestamp", details=item) from exc
            trail = trail.visit(item["stage"], at)
        return trail
