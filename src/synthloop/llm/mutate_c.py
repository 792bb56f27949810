"""The C/CUDA variant of the ``mutate`` baseline: perturb a kernel's likely tunables, found by a C tokenizer.

Blind edits of arbitrary literals in a kernel almost always break it (an index offset, a stencil weight),
so this variant only touches constants that are *tuning knobs* by construction, and leaves the function
signatures (the ABI the harness calls) alone:

=====================  ===================================================================================
site                   example (the number that moves)
=====================  ===================================================================================
``define``             ``#define TILE 32`` (an object-like macro whose body is one number)
``const``              ``const int BLOCK = 256;``, ``constexpr int K = 4;``, ``enum { TILE = 16 };``
``unroll``             ``#pragma unroll 4``, ``#pragma GCC unroll 4``, ``unroll_count(4)``
``chunk``              ``#pragma omp parallel for schedule(static, 16)``; ``schedule(static)`` gains a chunk
``simdlen``            ``#pragma omp simd simdlen(8)``
``launch_bounds``      ``__launch_bounds__(256)`` (CUDA: powers of two in 32..1024)
``step``               ``for (...; ...; i += 4)`` (a loop-step constant)
``insert_unroll``      a loop with no pragma of its own gets ``#pragma GCC unroll N`` (C) /
                       ``#pragma unroll N`` (CUDA): a pure hint, never a change of meaning
=====================  ===================================================================================

Sites are found with pygments' ``CLexer`` / ``CudaLexer`` / ``CppLexer`` tokens (``Token.Literal.Number.*``,
``Token.Name``, ``Token.Keyword``), never with regexes over the raw text, so numbers in comments, string
literals, ``#include`` lines and ``#if 0`` blocks are never touched. A preprocessor directive reaches the
outer token stream as one ``Comment.Preproc`` token; its body is tokenized again with the same lexer to find
the numbers inside ``#define`` and ``#pragma`` lines. Edits are spliced into the source at the tokens'
offsets, so formatting and comments survive. The caller seeds ``rng``; the same seed gives the same edit.
Some children will not compile or will compute the wrong answer: the kernel task rejects them and the
search goes on, as it does with a model's mistakes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pygments.lexer import Lexer

#: unroll factors tried (a factor moves to a neighbour on this ladder)
UNROLL_LADDER = (1, 2, 4, 8, 16)
#: chunk sizes for a ``schedule(kind)`` clause that had none
CHUNKS = (1, 4, 16, 64)
#: ``__launch_bounds__`` stays a legal block size
LAUNCH_BOUNDS = (32, 64, 128, 256, 512, 1024)
_SCHEDULE_KINDS = frozenset({"static", "dynamic", "guided"})
_INT_SUFFIX = "uUlL"
_FLOAT_SUFFIX = "fFlL"


@dataclass(frozen=True)
class CSite:
    """One tunable: the character span of its number (empty for an insertion), what kind it is, its value."""

    kind: str
    start: int
    end: int
    line: int
    text: str  # the literal as written ("" for an insertion)
    value: int | float | None
    weight: float


@dataclass(frozen=True)
class _Tok:
    start: int
    kind: str  # "num" | "name" | "kw" | "op" | "punct" | "other"
    text: str


def _lexer(dialect: str) -> Lexer:
    from pygments.lexers.c_cpp import CLexer, CppLexer
    from pygments.lexers.c_like import CudaLexer

    return {"c": CLexer, "cuda": CudaLexer, "cpp": CppLexer}[dialect]()


def _classify(ttype: object) -> str:
    from pygments.token import Comment, Keyword, Literal, Name, Operator, Punctuation, String, Text

    if ttype in Comment or ttype in String or ttype in Text:
        return "skip"
    if ttype in Literal.Number:
        return "num"
    if ttype in Keyword:
        return "kw"
    if ttype in Name:
        return "name"
    if ttype in Operator:
        return "op"
    if ttype in Punctuation:
        return "punct"
    return "other"


def _parse_number(text: str) -> int | float | None:
    """The value of a positive decimal/hex integer or decimal float literal; None for anything else."""
    t = text.strip()
    if not t or t[0] in "+-":
        return None
    if t[:2].lower() == "0x":
        digits = t[2:].rstrip(_INT_SUFFIX)
        try:
            return int(digits, 16) if digits else None
        except ValueError:  # a hex float (0x1p3) or junk
            return None
    if t[:2].lower() == "0b":
        return None
    if any(c in t for c in ".eE"):
        try:
            v = float(t.rstrip(_FLOAT_SUFFIX))
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    digits = t.rstrip(_INT_SUFFIX)
    if not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):  # octal: leave it alone
        return None
    return int(digits)


def _format_like(old: str, new: int | float) -> str:
    """``new`` written in the style of ``old``: same base and suffix for ints, same suffix for floats."""
    if isinstance(new, int):
        suffix = old[len(old.rstrip(_INT_SUFFIX)):]
        if old[:2].lower() == "0x":
            body = f"{new:x}" if any(c in "abcdef" for c in old[2:].rstrip(_INT_SUFFIX)) else f"{new:X}"
            return old[:2] + body + suffix
        return f"{new}{suffix}"
    suffix = old[len(old.rstrip(_FLOAT_SUFFIX)):]
    body = f"{new:.6g}"
    if not any(c in body for c in ".eE"):
        body += ".0"
    return body + suffix


def _is_pow2(v: int) -> bool:
    return v >= 1 and v & (v - 1) == 0


def _step_int(v: int, rng: random.Random) -> int:
    """A nearby positive integer: powers of two move by x2 / /2 (sometimes x4 / /4), others jitter."""
    if _is_pow2(v) and v >= 2:
        factor = 4 if rng.random() < 0.2 else 2
        up = rng.random() < 0.5 or v // factor < 1
        return v * factor if up else v // factor
    if v >= 10:
        new = max(1, int(round(v * math.exp(rng.gauss(0.0, 0.3)))))
    else:
        new = max(1, v + rng.choice((-2, -1, 1, 2)))
    return new if new != v else v + 1


def _on_ladder(v: int, ladder: tuple[int, ...], rng: random.Random) -> int:
    """A neighbour of ``v`` on ``ladder`` (two rungs away one time in five)."""
    if v in ladder:
        i = ladder.index(v)
        step = 2 if rng.random() < 0.2 else 1
        moves = [j for j in (i - step, i + step) if 0 <= j < len(ladder)]
        return ladder[rng.choice(moves)]
    return min(ladder, key=lambda x: (abs(math.log2(x) - math.log2(max(v, 1))), x))


def _step_float(v: float, rng: random.Random) -> float:
    sigma = rng.choice((0.01, 0.03, 0.1, 0.3))
    for _ in range(8):
        new = float(f"{v * math.exp(rng.gauss(0.0, sigma)):.6g}")
        if new != v and math.isfinite(new):
            return new
    return v * 1.01


# ---------------------------------------------------------------------------- finding sites

def _significant(lexer: Lexer, text: str, offset: int) -> list[_Tok]:
    """Tokens of ``text`` that carry meaning (no whitespace, comments or strings), with absolute offsets."""
    out = []
    for i, ttype, value in lexer.get_tokens_unprocessed(text):
        kind = _classify(ttype)
        if kind != "skip" and value.strip() not in ("", "\\"):  # "\\": a line continuation
            out.append(_Tok(offset + i, kind, value))
    return out


def _directives(lexer: Lexer, code: str) -> tuple[list[list[tuple[int, int]]], list[_Tok]]:
    """The ``#define`` / ``#pragma`` directives (each a list of body pieces, as the outer lexer delimits
    them: a continued line or a comment splits a body) and the code tokens outside directives."""
    from pygments.token import Comment

    directives: list[list[tuple[int, int]]] = []
    pieces: list[tuple[int, int]] | None = None  # the directive being read, if any
    continued = False
    code_toks: list[_Tok] = []
    for i, ttype, value in lexer.get_tokens_unprocessed(code):
        if ttype in Comment.Preproc and ttype not in Comment.PreprocFile:
            if value == "#":
                pieces, continued = [], False
                directives.append(pieces)
            elif pieces is not None and not value.strip():
                if "\n" in value and not continued:
                    pieces = None  # end of the directive's logical line
            elif pieces is not None:
                pieces.append((i, i + len(value)))
                continued = value.rstrip(" \t").endswith("\\")
            # else: "#if 0", "#endif", ... arrive as one token with nothing to tune
            continue
        if pieces is not None and ttype in Comment:
            continue  # a comment inside the directive
        pieces = None
        kind = _classify(ttype)
        if kind != "skip" and value.strip():
            code_toks.append(_Tok(i, kind, value))
    return directives, code_toks


def _line_of(code: str, pos: int) -> int:
    return code.count("\n", 0, pos) + 1


def _num_site(code: str, tok: _Tok, kind: str, weight: float) -> CSite | None:
    value = _parse_number(tok.text)
    if value is None or value <= 0:
        return None
    if isinstance(value, float):
        weight = min(weight, 0.5)  # a float constant is rarely a knob (usually physics)
    return CSite(kind, tok.start, tok.start + len(tok.text), _line_of(code, tok.start), tok.text, value, weight)


def _directive_sites(code: str, body: list[_Tok]) -> list[CSite]:
    """Sites inside one ``#define`` or ``#pragma`` body (already tokenized)."""
    if not body or body[0].kind != "name":
        return []
    head = body[0].text
    sites: list[CSite] = []
    if head == "define" and len(body) >= 3 and body[1].kind == "name":
        name_end = body[1].start + len(body[1].text)
        if code[name_end:name_end + 1] == "(":  # function-like macro: not a constant
            return []
        rest = body[2:]
        nums = [t for t in rest if t.kind == "num"]
        if len(nums) == 1 and all(t.kind == "num" or t.text in ("(", ")") for t in rest):
            value = _parse_number(nums[0].text)
            weight = 4.0 if isinstance(value, int) and _is_pow2(value) else 3.0
            site = _num_site(code, nums[0], "define", weight)
            sites.extend([site] if site else [])
        return sites
    if head != "pragma":
        return []
    words = [t.text for t in body]
    for j, t in enumerate(body):
        if t.kind != "num":
            continue
        before = [w for w in words[max(0, j - 3):j] if w not in ("(", ")", ",")]
        if any("unroll" in w for w in before):
            site = _num_site(code, t, "unroll", 4.0)
        elif "omp" in words and "schedule" in words[max(0, j - 4):j]:
            site = _num_site(code, t, "chunk", 2.0)
        elif "omp" in words and j >= 2 and words[j - 2] == "simdlen":
            site = _num_site(code, t, "simdlen", 1.0)
        else:  # collapse(N), safelen(N), num_threads(N), ...: meaning, not tuning
            site = None
        sites.extend([site] if site else [])
    if "omp" in words:  # schedule(static) -> schedule(static, N)
        for j in range(len(body) - 3):
            if words[j] == "schedule" and words[j + 1] == "(" and words[j + 2] in _SCHEDULE_KINDS \
                    and words[j + 3] == ")":
                pos = body[j + 2].start + len(body[j + 2].text)
                sites.append(CSite("insert_chunk", pos, pos, _line_of(code, pos), "", None, 1.5))
    return sites


def _code_sites(code: str, toks: list[_Tok]) -> list[CSite]:
    """Named constants, ``__launch_bounds__`` and loop steps among the code tokens."""
    sites: list[CSite] = []
    stmt_start = 0  # index of the first token of the current statement
    brace_owner: list[bool] = []  # per open brace: does it open an enum?
    for_depth: int | None = None  # paren depth of the innermost for-header we are in
    for_semis = 0
    depth = 0
    for j, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            if for_depth is not None and depth < for_depth:
                for_depth = None
        elif t.text == "{":
            brace_owner.append(any(x.text == "enum" for x in toks[stmt_start:j]))
            stmt_start = j + 1
            continue
        elif t.text == "}":
            if brace_owner:
                brace_owner.pop()
            stmt_start = j + 1
            continue
        elif t.text == ";":
            if for_depth is not None and depth == for_depth:
                for_semis += 1
            else:
                stmt_start = j + 1
            continue
        if t.kind == "kw" and t.text == "for" and j + 1 < len(toks) and toks[j + 1].text == "(":
            for_depth, for_semis = depth + 1, 0
        if t.kind != "num":
            continue
        prev = [x.text for x in toks[max(0, j - 3):j]]
        nxt = toks[j + 1].text if j + 1 < len(toks) else ""
        site = None
        if len(prev) >= 2 and prev[-1] == "(" and prev[-2] == "__launch_bounds__":
            site = _num_site(code, t, "launch_bounds", 1.0)
        elif for_depth is not None and for_semis == 2 and (
                (len(prev) >= 2 and prev[-1] in ("+=", "-=") and toks[j - 2].kind == "name")
                or (len(prev) >= 3 and prev[-1] == "=" and prev[-2] in ("+", "-") and toks[j - 3].kind == "name")):
            site = _num_site(code, t, "step", 1.0)  # the lexer may split "+=" in two
        elif len(prev) >= 2 and prev[-1] == "=" and toks[j - 2].kind == "name" and nxt in (";", ",", "}") \
                and depth == 0:
            stmt = [x.text for x in toks[stmt_start:j]]
            in_enum = bool(brace_owner) and brace_owner[-1]
            named = ("const" in stmt or "constexpr" in stmt) and "[" not in stmt
            if named or in_enum:
                value = _parse_number(t.text)
                site = _num_site(code, t, "const", 4.0 if isinstance(value, int) and _is_pow2(value) else 3.0)
        sites.extend([site] if site else [])
    return sites


def _collapsed(body: list[_Tok]) -> int:
    """N of an OpenMP ``collapse(N)`` clause in a directive body (1 when there is none)."""
    words = [t.text for t in body]
    if "omp" not in words:
        return 1
    for j in range(len(body) - 3):
        if words[j] == "collapse" and words[j + 1] == "(" and body[j + 2].kind == "num" and words[j + 3] == ")":
            n = _parse_number(words[j + 2])
            return n if isinstance(n, int) and n > 1 else 1
    return 1


def _unroll_insertions(code: str, toks: list[_Tok], collapses: list[tuple[int, int]]) -> list[CSite]:
    """Loops that start their own line, have no pragma (or other directive) on the line above, and are not
    among the loops an OpenMP ``collapse(N)`` fuses (those must stay perfectly nested: a pragma between
    them does not compile). ``collapses``: (offset of the directive, N)."""
    fors = [t for t in toks if t.kind == "kw" and t.text == "for"]
    fused: set[int] = set()
    for pos, n in collapses:
        fused.update(t.start for t in [f for f in fors if f.start > pos][1:n])
    sites = []
    for t in fors:
        if t.start in fused:
            continue
        line_start = code.rfind("\n", 0, t.start) + 1
        if code[line_start:t.start].strip():
            continue  # "} for", "else for", a label: not a loop that owns its line
        above = code[:line_start].rstrip("\n").rsplit("\n", 1)[-1] if line_start else ""
        if above.lstrip().startswith("#") or above.rstrip().endswith("\\"):
            continue
        sites.append(CSite("insert_unroll", line_start, line_start, _line_of(code, t.start), "", None, 1.5))
    return sites


def tunable_sites(code: str, dialect: str = "c") -> list[CSite]:
    """Every site :func:`mutate_c_source` may change in ``code`` (``dialect``: "c", "cuda" or "cpp")."""
    lexer = _lexer(dialect)
    directives, toks = _directives(lexer, code)
    sites: list[CSite] = []
    collapses: list[tuple[int, int]] = []
    for pieces in directives:
        body = [t for a, b in pieces for t in _significant(lexer, code[a:b], a)]
        sites.extend(_directive_sites(code, body))
        if body and _collapsed(body) > 1:
            collapses.append((body[0].start, _collapsed(body)))
    sites.extend(_code_sites(code, toks))
    sites.extend(_unroll_insertions(code, toks, collapses))
    return sorted(sites, key=lambda s: (s.start, s.kind))


# ---------------------------------------------------------------------------- editing

def _edit(site: CSite, code: str, rng: random.Random, dialect: str) -> tuple[str, str]:
    """(replacement text for the site's span, a one-line note for the answer)."""
    if site.kind == "insert_unroll":
        rest = code[site.start:]
        indent = rest[:len(rest) - len(rest.lstrip(" \t"))]
        factor = rng.choice((2, 4, 8, 16))
        pragma = f"#pragma unroll {factor}" if dialect == "cuda" else f"#pragma GCC unroll {factor}"
        return f"{indent}{pragma}\n", f"line {site.line}: {pragma} inserted before the loop"
    if site.kind == "insert_chunk":
        chunk = rng.choice(CHUNKS)
        return f", {chunk}", f"line {site.line}: schedule chunk {chunk} added"
    assert site.value is not None
    if isinstance(site.value, float):
        new: int | float = _step_float(site.value, rng)
    elif site.kind == "unroll":
        new = _on_ladder(site.value, UNROLL_LADDER, rng)
    elif site.kind == "launch_bounds":
        new = _on_ladder(site.value, LAUNCH_BOUNDS, rng)
    else:
        new = _step_int(site.value, rng)
    text = _format_like(site.text, new)
    return text, f"line {site.line}: {site.kind} {site.text} -> {text}"


def _overlaps(a: CSite, b: CSite) -> bool:
    return a.start == b.start or (a.start < b.end and b.start < a.end)


def mutate_c_source(code: str, rng: random.Random, dialect: str = "c", max_edits: int = 3) -> tuple[str, list[str]]:
    """Change 1..max_edits tunables of ``code``; returns (new code, notes). ``(code, [])`` if there are none."""
    sites = tunable_sites(code, dialect)
    if not sites or max_edits < 1:
        return code, []
    # mostly single edits, as in the Python variant: several blind edits at once rarely all help
    k = min(len(sites), rng.choices(range(1, max_edits + 1), weights=[0.5 ** i for i in range(max_edits)])[0])
    pool = list(sites)
    chosen: list[CSite] = []
    while pool and len(chosen) < k:
        pick = pool.pop(rng.choices(range(len(pool)), weights=[s.weight for s in pool])[0])
        if not any(_overlaps(pick, c) for c in chosen):
            chosen.append(pick)
    edits = []
    notes = []
    for site in sorted(chosen, key=lambda s: s.start):
        text, note = _edit(site, code, rng, dialect)
        edits.append((site.start, site.end, text))
        notes.append(note)
    out = code
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out, notes
