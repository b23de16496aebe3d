"""Regular expressions from ``adapter_config.json``, matched in bounded time with ``re`` semantics.

peft reads ``target_modules``/``exclude_modules``/``feedforward_modules`` (a string is
``re.fullmatch``-ed), the keys of ``rank_pattern``/``alpha_pattern`` (``re.match`` of
``(.*\\.)?(KEY)$``) and ``layers_pattern`` (``re.match`` of ``.*\\.PATTERN\\.(\\d+)\\.``) with
Python's backtracking engine, where a 27-character pattern can hold the GIL for minutes. Here:

1. Python's own parser reads the pattern (so what is valid, and what it means, is Python's).
2. A *regular* pattern (no lookaround, backreference, conditional, atomic group, possessive repeat,
   case-insensitive flag) is re-emitted in RE2 syntax from that parse tree and run by RE2 in
   linear time. Every character test is emitted as the explicit set of characters Python's own
   compiled test accepts among printable ASCII, so RE2 decides exactly what ``re`` decides for a
   printable-ASCII module name - which every real checkpoint uses.
3. Everything else - the other patterns, and any name with a character outside printable ASCII -
   runs on :mod:`registry.validation.regex_vm`, a backtracking matcher with Python's semantics
   and a step budget shared by the whole validation.

So valid patterns match exactly as with ``re``; what cannot be decided within the limits is
refused with :class:`~registry.errors.InvalidAdapterConfig` reason ``pattern_too_complex``:
a pattern longer than :attr:`RegexLimits.max_pattern_chars`, more than
:attr:`RegexLimits.max_patterns` patterns, a bounded-matcher program over
:data:`MAX_PROGRAM_INSTRUCTIONS`, more than :attr:`RegexLimits.match_budget` evaluations or more
than :attr:`RegexLimits.step_budget` bounded-matcher steps in one validation.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from registry.errors import InvalidAdapterConfig
from registry.validation import regex_vm

if TYPE_CHECKING:
    from registry.validation.config import AdapterConfig

# google-re2 ships no type information.
_re2: Any = importlib.import_module("re2")

#: Largest program the bounded matcher builds (counted repeats are unrolled into copies).
MAX_PROGRAM_INSTRUCTIONS = 20_000
#: The alphabet RE2 is trusted on: printable ASCII (tensor names never hold control characters).
_PLAIN = [chr(c) for c in range(0x20, 0x7F)]
_NOT_REGULAR = frozenset(
    {"ASSERT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS", "ATOMIC_GROUP", "POSSESSIVE_REPEAT"}
)
_RE2_MAX_REPEAT = 1000


@dataclass(frozen=True)
class RegexLimits:
    """Bounds on config-supplied patterns (see the module docstring)."""

    max_pattern_chars: int = 4096
    max_patterns: int = 4096
    match_budget: int = 200_000
    step_budget: int = 1_000_000


def too_complex(detail: str, pattern: str, **context: Any) -> NoReturn:
    raise InvalidAdapterConfig(
        detail,
        reason="pattern_too_complex",
        context={"file": "adapter_config.json", "pattern": pattern[:100], **context},
    )


class _NotRegular(Exception):
    pass


def _is_plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _char_class(chars: list[str]) -> str:
    if not chars:
        return r"[^\x{0}-\x{10ffff}]"
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def _emit(sub: Any, flags: int, out: list[str], groups: int) -> None:
    """Append RE2 syntax equivalent to ``sub`` on printable-ASCII text (or raise _NotRegular)."""
    for op, av in sub.data if hasattr(sub, "data") else sub:
        name = str(op)
        if name in _NOT_REGULAR or (flags & regex_vm.FLAG_IGNORECASE):
            raise _NotRegular(name)
        if name == "LITERAL":
            out.append(f"\\x{{{av:x}}}")
        elif name in ("NOT_LITERAL", "ANY", "IN"):
            test = regex_vm.atom((op, av), flags)
            out.append(_char_class([c for c in _PLAIN if test.match(c)]))
        elif name == "AT":
            out.append(_at(str(av)))
        elif name == "BRANCH":
            out.append("(?:")
            for i, alternative in enumerate(av[1]):
                if i:
                    out.append("|")
                _emit(alternative, flags, out, groups)
            out.append(")")
        elif name == "SUBPATTERN":
            group, add_flags, del_flags, body = av
            out.append("(" if group is not None else "(?:")
            _emit(body, (flags | add_flags) & ~del_flags, out, groups)
            out.append(")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, body = av
            if groups and body.getwidth()[0] == 0:
                # RE2 credits captures to empty loop iterations differently from sre (the
                # match is the same, a group's span may not be): keep captures exact.
                raise _NotRegular("nullable loop with capturing groups")
            if low > _RE2_MAX_REPEAT or (high != regex_vm.MAXREPEAT and high > _RE2_MAX_REPEAT):
                raise _NotRegular("repeat count")
            out.append("(?:")
            _emit(body, flags, out, groups)
            out.append(f"){{{low},}}" if high == regex_vm.MAXREPEAT else f"){{{low},{high}}}")
            if name == "MIN_REPEAT":
                out.append("?")
        else:
            raise _NotRegular(name)


def _at(code: str) -> str:
    # Printable text has no newline, so ^ and $ (with or without MULTILINE) are \A and \z, and a
    # word boundary is the ASCII one in both engines.
    if code.startswith("AT_BEGINNING"):
        return r"\A"
    if code.startswith("AT_END"):
        return r"\z"
    if code.endswith("NON_BOUNDARY"):
        return r"\B"
    if code.endswith("BOUNDARY"):
        return r"\b"
    raise _NotRegular(code)


class SafeRegex:
    """One pattern: RE2 when it is regular, the bounded matcher otherwise (built lazily)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._parsed = regex_vm.parse(pattern)  # re.error for invalid syntax, as re.compile
        self.groups = self._parsed.state.groups - 1
        self._program: regex_vm.Program | None = None
        self._re2: Any = None
        try:
            out: list[str] = []
            _emit(self._parsed, self._parsed.state.flags, out, self.groups)
            options = _re2.Options()
            options.log_errors = False
            self._re2 = _re2.compile("".join(out), options)
        except (_NotRegular, _re2.error):
            self.program()  # build now, so an oversized pattern is refused at parse time

    @property
    def uses_re2(self) -> bool:
        return self._re2 is not None

    def program(self) -> regex_vm.Program:
        if self._program is None:
            try:
                self._program = regex_vm.compile_program(
                    self._parsed, max_instructions=MAX_PROGRAM_INSTRUCTIONS
                )
            except (regex_vm.TooComplex, regex_vm.Unsupported, RecursionError) as exc:
                too_complex(f"pattern cannot be matched in bounded time: {exc}", self.pattern)
        return self._program

    def spans(
        self, text: str, budget: regex_vm.StepBudget, *, full: bool, force_vm: bool = False
    ) -> list[int] | None:
        """Group spans (flat, -1 unset) of ``re.fullmatch``/``re.match``, or None.

        Raises:
            InvalidAdapterConfig: ``pattern_too_complex`` when the step budget runs out.
        """
        # sre's \B never matches in an empty string, RE2's does: the empty text goes to the VM.
        if self._re2 is not None and not force_vm and text and _is_plain(text):
            m = self._re2.fullmatch(text) if full else self._re2.match(text)
            if m is None:
                return None
            return [x for g in range(self.groups + 1) for x in m.span(g)]
        try:
            return regex_vm.run(self.program(), text, budget, full=full)
        except regex_vm.BudgetExhausted:
            too_complex("pattern matching exceeded its step budget", self.pattern)


@dataclass
class PatternSet:
    """The compiled patterns of one config and the matching budget of one validation."""

    limits: RegexLimits = field(default_factory=RegexLimits)
    _compiled: dict[str, SafeRegex] = field(default_factory=dict)
    _results: dict[tuple[str, str, bool], list[int] | None] = field(default_factory=dict)
    _matches: int = 0
    _steps: regex_vm.StepBudget | None = None

    def compile(self, pattern: str) -> SafeRegex:
        """The compiled form of ``pattern`` (cached).

        Raises:
            InvalidAdapterConfig: ``pattern_too_complex`` (too long, or too big a program).
            re.error: not a valid Python regular expression.
        """
        found = self._compiled.get(pattern)
        if found is None:
            if len(pattern) > self.limits.max_pattern_chars:
                too_complex(
                    f"pattern longer than {self.limits.max_pattern_chars} characters", pattern
                )
            found = self._compiled[pattern] = SafeRegex(pattern)
        return found

    def _spans(self, pattern: str, text: str, full: bool) -> list[int] | None:
        key = (pattern, text, full)
        if key in self._results:
            return self._results[key]
        self._matches += 1
        if self._matches > self.limits.match_budget:
            too_complex(
                f"more than {self.limits.match_budget} pattern evaluations in one validation",
                pattern,
            )
        if self._steps is None:
            self._steps = regex_vm.StepBudget(self.limits.step_budget)
        result = self._results[key] = self.compile(pattern).spans(text, self._steps, full=full)
        return result

    def fullmatch(self, pattern: str, text: str) -> bool:
        """``re.fullmatch(pattern, text) is not None``, bounded."""
        return self._spans(pattern, text, True) is not None

    def match_group(self, pattern: str, text: str, group: int) -> str | None:
        """``re.match(pattern, text)``'s group ``group`` (None when no match or group unset)."""
        spans = self._spans(pattern, text, False)
        if spans is None or spans[2 * group] < 0:
            return None
        return text[spans[2 * group] : spans[2 * group + 1]]

    def matches(self, pattern: str, text: str) -> bool:
        """``re.match(pattern, text) is not None``, bounded."""
        return self._spans(pattern, text, False) is not None


def rank_key_pattern(key: str) -> str:
    """peft's ``get_pattern_key`` regex for a ``rank_pattern``/``alpha_pattern`` key."""
    return rf"(.*\.)?({key})$"


def layers_regex(pattern: str, *, first: bool = True) -> str:
    """peft's layer-index regex for one ``layers_pattern`` entry (group 1 is the index): the
    first numbered segment after the pattern as peft 0.21 reads it (lazy), or with ``first=False``
    the last, as earlier releases did (greedy; MoE expert and T5 sub-layer indices won)."""
    return rf"(?:^|.*?\.){pattern}\.(\d+)\." if first else rf".*\.{pattern}\.(\d+)\."


#: peft's layer index without ``layers_pattern``: the first numbered segment (peft 0.21) ...
DEFAULT_LAYERS_REGEX = r".*?\.[^.]*\.(\d+)\."
#: ... and the last one, as peft read it before (huggingface/peft#3318).
EARLIER_LAYERS_REGEX = r".*\.[^.]*\.(\d+)\."


def _config_patterns(cfg: AdapterConfig) -> list[tuple[str, str]]:
    """Every regex ``cfg`` makes peft run, as (field, pattern as peft composes it)."""
    found: list[tuple[str, str]] = []
    for name in ("target_modules", "exclude_modules", "feedforward_modules"):
        spec = getattr(cfg, name)
        if isinstance(spec, str):
            found.append((name, spec))
    for name in ("rank_pattern", "alpha_pattern"):
        found += [(name, rank_key_pattern(key)) for key in getattr(cfg, name)]
    found += [("layers_pattern", layers_regex(p)) for p in cfg.layers_pattern or ()]
    return found


def compile_config_patterns(cfg: AdapterConfig) -> None:
    """Count, bound and compile every regex of ``cfg`` (refusals happen at parse time).

    Raises:
        InvalidAdapterConfig: ``pattern_too_complex``; ``schema`` when a pattern is not valid
            inside peft's wrapper.
    """
    found = _config_patterns(cfg)
    limits = cfg.patterns.limits
    if len(found) > limits.max_patterns:
        too_complex(f"more than {limits.max_patterns} patterns", found[0][1], count=len(found))
    for name, pattern in found:
        if len(pattern) > limits.max_pattern_chars:
            too_complex(
                f"{name} pattern longer than {limits.max_pattern_chars} characters",
                pattern,
                field=name,
            )
        try:
            cfg.patterns.compile(pattern)
        except re.error as exc:  # a key valid alone may not be inside peft's wrapper
            raise InvalidAdapterConfig(
                f"{name} invalid regular expression: {exc}",
                reason="schema",
                context={"file": "adapter_config.json", "field": name},
            ) from exc


class Names(tuple[str, ...]):
    """A list of module names from the config (``target_modules`` and its kin): a name matches a
    module path equal to it or ending with ``.name``. Looked up through the path's dotted
    suffixes in a set, so a config of many names costs one pass, not one per module."""

    @functools.cached_property
    def names(self) -> frozenset[str]:
        return frozenset(self)

    def match(self, module: str) -> bool:
        """``module == name or module.endswith("." + name)`` for some listed name."""
        parts = module.split(".")
        return any(".".join(parts[i:]) in self.names for i in range(len(parts)))
