"""Pull the candidate program out of a model's answer.

Models answer in three shapes: a fenced code block (tagged or not, sometimes
several), SEARCH/REPLACE edit blocks against the parent, or bare code. When
none of them works, :class:`ExtractionError` carries a message written *for
the model*: the engine shows it verbatim in the retry prompt, so it says
exactly what was wrong and what to send instead.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["ExtractionError", "CodeBlock", "extract_code", "find_code_blocks", "apply_search_replace"]

#: language tags that count as the same language
_ALIASES: dict[str, frozenset[str]] = {
    "python": frozenset({"python", "py", "python3", "py3"}),
    "c": frozenset({"c", "h"}),
    "cpp": frozenset({"cpp", "c++", "cc", "cxx", "hpp"}),
    "cuda": frozenset({"cuda", "cu", "cuh"}),
    "text": frozenset({"text", "txt", "plain", "plaintext", "markdown", "md"}),
}
_TEXT_LANGUAGES = frozenset({"text", "markdown", "md", "plain", "spec"})

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_SEARCH = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b.*$", re.MULTILINE)
_DIVIDER = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE\b.*$")


class ExtractionError(ValueError):
    """No usable code in the answer; ``str(e)`` is meant to be shown to the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CodeBlock:
    lang: str  # first word of the info string, lower-cased; "" when untagged
    code: str
    line: int  # 1-based line of the opening fence


def _lang_matches(tag: str, language: str) -> bool:
    language = language.lower()
    return tag in _ALIASES.get(language, frozenset({language}))


def find_code_blocks(text: str) -> tuple[list[CodeBlock], CodeBlock | None]:
    """Closed fenced blocks, plus the unterminated one at the end (if any).

    A block closes on a line holding only the same fence character, at least as
    many times as the opening fence (CommonMark), so code containing ``` can be
    wrapped in a longer fence.
    """
    blocks: list[CodeBlock] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence = m.group("fence")
        info = m.group("info").strip()
        tag = info.split()[0].lower().lstrip("{.").rstrip("}") if info else ""
        close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i])
            i += 1
        code = "\n".join(body) + ("\n" if body else "")
        if i >= len(lines):
            return blocks, CodeBlock(tag, code, start + 1)
        blocks.append(CodeBlock(tag, code, start + 1))
        i += 1
    return blocks, None


def _choose_block(blocks: list[CodeBlock], language: str) -> CodeBlock | None:
    """The longest block tagged with ``language``; else the longest untagged; else the longest."""
    for group in ([b for b in blocks if _lang_matches(b.lang, language)],
                  [b for b in blocks if not b.lang],
                  blocks):
        nonempty = [b for b in group if b.code.strip()]
        if nonempty:
            return max(nonempty, key=lambda b: len(b.code))
    return None


def _looks_like_python(text: str) -> bool:
    """A bare answer is accepted as code only if it parses and holds a real statement."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)


# ----------------------------------------------------------------- SEARCH/REPLACE

def _parse_edit_blocks(text: str) -> list[tuple[str, str]]:
    lines = text.replace("\r\n", "\n").split("\n")
    edits: list[tuple[str, str]] = []
    i = 0
    n_block = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        n_block += 1
        i += 1
        search: list[str] = []
        while i < len(lines) and not _DIVIDER.match(lines[i]):
            if _SEARCH.match(lines[i]) or _REPLACE.match(lines[i]):
                raise ExtractionError(
                    f"SEARCH/REPLACE block {n_block} is malformed: expected a line '=======' between the "
                    "SEARCH text and the REPLACE text. Use exactly:\n<<<<<<< SEARCH\n(lines copied from the "
                    "current code)\n=======\n(new lines)\n>>>>>>> REPLACE")
            search.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ExtractionError(
                f"SEARCH/REPLACE block {n_block} is not terminated: no '=======' line after "
                "'<<<<<<< SEARCH' (was the answer cut off?).")
        i += 1
        replace: list[str] = []
        while i < len(lines) and not _REPLACE.match(lines[i]):
            if _SEARCH.match(lines[i]):
                break
            replace.append(lines[i])
            i += 1
        if i >= len(lines) or not _REPLACE.match(lines[i]):
            raise ExtractionError(
                f"SEARCH/REPLACE block {n_block} is not terminated: no '>>>>>>> REPLACE' line after "
                "'=======' (was the answer cut off?).")
        i += 1
        edits.append(("".join(x + "\n" for x in search), "".join(x + "\n" for x in replace)))
    return edits


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _lines(text: str) -> list[str]:
    """Lines of a SEARCH/REPLACE section (each section's lines end with a newline; "" means no lines)."""
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def _fuzzy_replace(source: str, search: str, replace: str) -> str | None:
    """Match line by line ignoring trailing whitespace, then ignoring indentation (re-indenting the replacement)."""
    src_lines = source.split("\n")
    s_lines = _lines(search)
    while s_lines and not s_lines[-1].strip():
        s_lines.pop()
    while s_lines and not s_lines[0].strip():
        s_lines.pop(0)
    if not s_lines:
        return None
    r_lines = _lines(replace)
    k = len(s_lines)
    for normalise in (str.rstrip, str.strip):
        target = [normalise(s) for s in s_lines]
        for start in range(len(src_lines) - k + 1):
            if [normalise(s) for s in src_lines[start:start + k]] != target:
                continue
            new = r_lines
            if normalise is str.strip:
                have, want = _indent(s_lines[0]), _indent(src_lines[start])
                if want.startswith(have):
                    extra = want[len(have):]
                    new = [extra + r if r.strip() else r for r in r_lines]
                elif have.startswith(want):
                    cut = len(have) - len(want)
                    new = [r[cut:] if r[:cut].strip() == "" else r.lstrip() for r in r_lines]
            return "\n".join(src_lines[:start] + new + src_lines[start + k:])
    return None


def _find_lines(code: str, search: str) -> int:
    """Offset of the first exact occurrence of ``search`` (whole lines) that starts a line, or -1."""
    pos = code.find(search)
    while pos >= 0:
        if pos == 0 or code[pos - 1] == "\n":
            return pos
        pos = code.find(search, pos + 1)
    return -1


def apply_search_replace(parent: str, edits: list[tuple[str, str]]) -> str:
    """Apply edits in order; each SEARCH must occur in the code as it is after the previous edits.

    Each section is whole lines, each ending in a newline; an empty REPLACE deletes the lines.
    """
    added_newline = not parent.endswith("\n")
    code = parent + "\n" if added_newline else parent
    for n, (search, replace) in enumerate(edits, start=1):
        if not search.strip():
            raise ExtractionError(
                f"SEARCH block {n} of {len(edits)} is empty: copy the exact lines to be replaced from the "
                "current code into the SEARCH part.")
        search_nl = search if search.endswith("\n") else search + "\n"
        replace_nl = replace if (replace.endswith("\n") or not replace) else replace + "\n"
        pos = _find_lines(code, search_nl)
        if pos >= 0:
            code = code[:pos] + replace_nl + code[pos + len(search_nl):]
            continue
        fuzzy = _fuzzy_replace(code, search_nl, replace_nl)
        if fuzzy is None:
            first = next(line for line in search.split("\n") if line.strip())
            raise ExtractionError(
                f"SEARCH block {n} of {len(edits)} was not found in the current code; its first line is "
                f"{first.strip()!r}. The SEARCH text must be copied exactly (same lines, same order) from the "
                "current code" + (", after the edits of the earlier blocks." if n > 1 else ".")
                + " Alternatively, send the complete program in one fenced code block.")
        code = fuzzy
    if added_newline and code.endswith("\n"):
        code = code[:-1]
    return code


# ---------------------------------------------------------------------- entry

def extract_code(text: str, parent: str | None, language: str = "python") -> str:
    """The candidate program in ``text``, or :class:`ExtractionError` saying what to fix.

    Order: SEARCH/REPLACE blocks (applied to ``parent``), then fenced blocks,
    then a bare answer that is clearly only code (Python) or any text (text
    artifacts).
    """
    lang = language.lower()
    fence_hint = f"```{lang}" if lang not in _TEXT_LANGUAGES else "```"
    if _SEARCH.search(text):
        edits = _parse_edit_blocks(text)
        if parent is None:
            raise ExtractionError(
                "The answer contains SEARCH/REPLACE blocks but there is no current code to apply them to. "
                f"Send the complete program in one {fence_hint} fenced block instead.")
        return apply_search_replace(parent, edits)

    blocks, unterminated = find_code_blocks(text)
    chosen = _choose_block(blocks, lang)
    if chosen is not None and (unterminated is None or not _lang_matches(unterminated.lang, lang)
                               or len(chosen.code) >= len(unterminated.code)):
        return chosen.code
    if blocks and chosen is None and unterminated is None:
        raise ExtractionError(
            f"The code block at line {blocks[0].line} is empty. Put the complete program inside one "
            f"{fence_hint} fenced block.")
    if unterminated is not None:
        raise ExtractionError(
            f"The code block opened at line {unterminated.line} ({'```' + unterminated.lang}) is never "
            "closed with a line of ```; the answer may have been cut off (too long?). Send the complete "
            f"program in one {fence_hint} block that ends with ```.")

    stripped = text.strip()
    if stripped and lang == "python" and _looks_like_python(stripped):
        return stripped + "\n"
    if stripped and lang in _TEXT_LANGUAGES:
        return stripped + "\n"
    raise ExtractionError(
        "No code block found in the answer. Put the complete program in one fenced block that starts with "
        f"a line {fence_hint} and ends with a line ```"
        + (", or give SEARCH/REPLACE blocks against the current code." if parent is not None else "."))
