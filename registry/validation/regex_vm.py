"""A bounded backtracking matcher with Python ``re`` semantics, for what RE2 cannot run.

RE2 (see :mod:`registry.validation.patterns`) runs every *regular* pattern in linear time. The
constructs it lacks - lookarounds (``(?=``, ``(?!``, ``(?<=``, ``(?<!``, used by ms-swift's
multimodal ``target_modules``), backreferences, conditionals, atomic groups, possessive
repeats - and case-insensitive matching (whose Unicode rules differ between the engines) run here
instead. The matcher walks the tree that Python's own parser builds (so the syntax is exactly
Python's), tests single characters and zero-width assertions with patterns compiled by Python's
own compiler (so character semantics are exactly Python's), and explores alternatives in the
order ``sre`` does, including its rule that a repeat stops after an iteration that matched the
empty string. Every executed instruction costs one step of a shared :class:`StepBudget`; when it
runs out, :class:`BudgetExhausted` is raised, so a pathological pattern costs a bounded amount
of CPU instead of holding the GIL for minutes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Python's regex parser and compiler are private modules (``re._parser``/``re._compiler`` since
# 3.11). They are the only way to get exactly Python's reading of a pattern; a test pins them.
_parser: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
_sre: Any = importlib.import_module("_sre")

MAXREPEAT: int = int(_parser.MAXREPEAT)
FLAG_IGNORECASE = 2
FLAG_ASCII = 256

# Instruction opcodes: (op, a, b).
LIT, PRED, SPLIT, JMP, SAVE, ASSERT_AT, LOOK, BACKREF, IFGROUP, ATOMIC, MARK, PROGRESS, MATCH = (
    range(13)
)

Instr = tuple[int, Any, Any]


class BudgetExhausted(Exception):
    """The step budget ran out before the match was decided."""


class TooComplex(Exception):
    """The pattern compiles to more instructions than allowed (e.g. huge counted repeats)."""


class Unsupported(Exception):
    """The parsed pattern holds a node this matcher does not know (future Python syntax)."""


class StepBudget:
    """Steps left for every bounded match of one validation (shared, decremented in place)."""

    def __init__(self, steps: int) -> None:
        self.left = steps


@dataclass
class Program:
    code: list[Instr]
    groups: int
    registers: int


def parse(pattern: str) -> Any:
    """Python's parse tree of ``pattern`` (raises ``re.error`` like ``re.compile``)."""
    return _parser.parse(pattern, 0)


def atom(node: tuple[Any, Any], flags: int) -> Any:
    """A one-node pattern compiled by Python itself, with the flags in force at that node."""
    state = _parser.State()
    state.flags = flags
    return _compiler.compile(_parser.SubPattern(state, [node]), flags)


class _Builder:
    def __init__(self, groups: int, max_instructions: int) -> None:
        self.groups = groups
        self.registers = 0
        self.budget = max_instructions

    def program(self, sub: Any, flags: int) -> list[Instr]:
        code: list[Instr] = []
        self._emit(code, sub, flags)
        code.append((MATCH, None, None))
        return code

    def _add(self, code: list[Instr], instr: Instr) -> int:
        self.budget -= 1
        if self.budget < 0:
            raise TooComplex("pattern compiles to too many instructions")
        code.append(instr)
        return len(code) - 1

    def _emit(self, code: list[Instr], sub: Any, flags: int) -> None:
        for op, av in sub.data if hasattr(sub, "data") else sub:
            self._node(code, str(op), op, av, flags)

    def _node(self, code: list[Instr], name: str, op: Any, av: Any, flags: int) -> None:
        if name == "LITERAL" and not flags & FLAG_IGNORECASE:
            self._add(code, (LIT, chr(av), None))
        elif name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            self._add(code, (PRED, atom((op, av), flags), None))
        elif name == "AT":
            self._add(code, (ASSERT_AT, atom((op, av), flags), None))
        elif name == "BRANCH":
            self._branch(code, av[1], flags)
        elif name == "SUBPATTERN":
            group, add_flags, del_flags, body = av
            inner = (flags | add_flags) & ~del_flags
            if group is not None:
                self._add(code, (SAVE, 2 * group, None))
            self._emit(code, body, inner)
            if group is not None:
                self._add(code, (SAVE, 2 * group + 1, None))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            self._repeat(code, av, flags, greedy=name == "MAX_REPEAT")
        elif name == "POSSESSIVE_REPEAT":
            possessive: list[Instr] = []  # sre: a greedy repeat never backtracked into
            self._repeat(possessive, av, flags, greedy=True)
            self._add(possessive, (MATCH, None, None))
            self._add(code, (ATOMIC, possessive, None))
        elif name == "ATOMIC_GROUP":
            self._add(code, (ATOMIC, self.program(av, flags), None))
        elif name in ("ASSERT", "ASSERT_NOT"):
            direction, body = av
            width = body.getwidth()[0] if direction < 0 else -1
            self._add(code, (LOOK, self.program(body, flags), (name == "ASSERT_NOT", width)))
        elif name == "GROUPREF":
            lower = None
            if flags & FLAG_IGNORECASE:
                lower = _ascii_lower if flags & FLAG_ASCII else _sre.unicode_tolower
            self._add(code, (BACKREF, av, lower))
        elif name == "GROUPREF_EXISTS":
            group, yes, no = av
            test = self._add(code, (IFGROUP, group, None))
            self._emit(code, yes, flags)
            jump = self._add(code, (JMP, None, None))
            code[test] = (IFGROUP, group, len(code))
            if no is not None:
                self._emit(code, no, flags)
            code[jump] = (JMP, len(code), None)
        else:
            raise Unsupported(name)

    def _branch(self, code: list[Instr], alternatives: list[Any], flags: int) -> None:
        jumps: list[int] = []
        for i, alternative in enumerate(alternatives):
            split = self._add(code, (SPLIT, None, None)) if i < len(alternatives) - 1 else -1
            self._emit(code, alternative, flags)
            if split >= 0:
                jumps.append(self._add(code, (JMP, None, None)))
                code[split] = (SPLIT, split + 1, len(code))
        for jump in jumps:
            code[jump] = (JMP, len(code), None)

    def _repeat(self, code: list[Instr], av: Any, flags: int, *, greedy: bool) -> None:
        low, high, body = av
        for _ in range(low):  # forced iterations: sre does not check progress below min
            self._emit(code, body, flags)
        optional = None if high == MAXREPEAT else high - low
        register = self.registers
        self.registers += 1
        exits: list[int] = []  # SPLIT / PROGRESS instructions whose exit target comes last
        count = 0
        while optional is None or count < optional:
            loop = self._add(code, (SPLIT, None, None))
            self._add(code, (MARK, register, None))
            self._emit(code, body, flags)
            progress = self._add(code, (PROGRESS, register, None))
            exits += [loop, progress]
            if optional is None:
                break
            count += 1
        end = len(code)
        for index in exits:
            op, a, _ = code[index]
            if op == SPLIT:  # greedy: body first; lazy: the tail first
                code[index] = (SPLIT, index + 1, end) if greedy else (SPLIT, end, index + 1)
            else:
                # After a non-empty iteration: the next iteration (the loop head again when
                # unbounded, the next optional copy otherwise); after an empty one: the tail.
                again = exits[exits.index(index) - 1] if optional is None else index + 1
                code[index] = (PROGRESS, a, (again, end))


def _ascii_lower(ch: int) -> int:
    return ch + 32 if 65 <= ch <= 90 else ch


def compile_program(parsed: Any, *, max_instructions: int) -> Program:
    """Compile Python's parse tree into a bounded-matcher program.

    Raises:
        TooComplex: more than ``max_instructions`` (counted repeats are unrolled).
        Unsupported: a node this matcher does not know.
    """
    builder = _Builder(parsed.state.groups, max_instructions)
    code = builder.program(parsed, parsed.state.flags)
    return Program(code=code, groups=parsed.state.groups, registers=builder.registers)


def run(program: Program, text: str, budget: StepBudget, *, full: bool) -> list[int] | None:
    """``re.fullmatch`` (``full``) or ``re.match`` of ``text``: the group spans as a flat
    ``[start0, end0, start1, end1, ...]`` list (-1 when unset), or None when it does not match.

    Raises:
        BudgetExhausted: the budget ran out first.
    """
    slots = [-1] * (2 * program.groups)
    registers = [-1] * max(program.registers, 1)
    end = _run(program.code, text, 0, slots, registers, budget, full)
    if end is None:
        return None
    slots[0], slots[1] = 0, end
    return slots


def _group_span(slots: list[int], group: int) -> tuple[int, int] | None:
    start, stop = slots[2 * group], slots[2 * group + 1]
    return (start, stop) if start >= 0 and stop >= start else None


def _run(
    code: list[Instr],
    text: str,
    pos: int,
    slots: list[int],
    registers: list[int],
    budget: StepBudget,
    full: bool,
) -> int | None:
    """Backtracking over ``code`` with an explicit stack (no recursion per character)."""
    n = len(text)
    stack: list[tuple[int, int, int]] = []
    undo: list[tuple[list[int], int, int]] = []
    pc = 0
    while True:
        budget.left -= 1
        if budget.left < 0:
            raise BudgetExhausted
        op, a, b = code[pc]
        ok = True
        if op == LIT:
            ok = pos < n and text[pos] == a
            pos += 1
            pc += 1
        elif op == PRED:
            ok = pos < n and a.match(text, pos) is not None
            pos += 1
            pc += 1
        elif op == SPLIT:
            stack.append((b, pos, len(undo)))
            pc = a
        elif op == JMP:
            pc = a
        elif op in (SAVE, MARK):
            target = slots if op == SAVE else registers
            undo.append((target, a, target[a]))
            target[a] = pos
            pc += 1
        elif op == PROGRESS:
            pc = b[0] if pos != registers[a] else b[1]
        elif op == ASSERT_AT:
            ok = a.match(text, pos) is not None
            pc += 1
        elif op == MATCH:
            if not full or pos == n:
                return pos
            ok = False
        elif op in (LOOK, ATOMIC):
            ok, pos = _sub(op, a, b, text, pos, slots, registers, budget, undo)
            pc += 1
        elif op == BACKREF:
            span = _group_span(slots, a)
            ok = span is not None and _same(text, pos, span, b)
            pos += span[1] - span[0] if span is not None else 0
            pc += 1
        else:  # IFGROUP
            pc = pc + 1 if _group_span(slots, a) is not None else b
        if not ok:
            if not stack:
                return None
            pc, pos, mark = stack.pop()
            while len(undo) > mark:
                target, index, old = undo.pop()
                target[index] = old


def _sub(
    op: int,
    code: list[Instr],
    how: tuple[bool, int] | None,
    text: str,
    pos: int,
    slots: list[int],
    registers: list[int],
    budget: StepBudget,
    undo: list[tuple[list[int], int, int]],
) -> tuple[bool, int]:
    """A lookaround or an atomic group: its first match only, never backtracked into."""
    inner = list(slots)
    start = pos
    if op == LOOK:
        assert how is not None
        negate, width = how
        if width >= 0:
            start = pos - width
            if start < 0:
                return negate, pos
        end = _run(code, text, start, inner, list(registers), budget, False)
        if negate:
            return end is None, pos
        if end is None:
            return False, pos
    else:
        end = _run(code, text, start, inner, list(registers), budget, False)
        if end is None:
            return False, pos
        pos = end
    for index, value in enumerate(inner):  # captures made inside persist, as in sre
        if slots[index] != value:
            undo.append((slots, index, slots[index]))
            slots[index] = value
    return True, pos


def _same(text: str, pos: int, span: tuple[int, int], lower: Callable[[int], int] | None) -> bool:
    length = span[1] - span[0]
    if pos + length > len(text):
        return False
    ref, here = text[span[0] : span[1]], text[pos : pos + length]
    if lower is None:
        return ref == here
    return all(lower(ord(x)) == lower(ord(y)) for x, y in zip(ref, here, strict=True))
