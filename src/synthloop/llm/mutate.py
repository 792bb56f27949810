"""``mutate``: the no-LLM baseline.

It answers every request by perturbing one to three numeric constants or
comparison operators of the parent program, found through the AST (Python), or
one to three tuning constants of a C/CUDA kernel, found with a C tokenizer
(:mod:`synthloop.llm.mutate_c`). It is a *named baseline*, reported with
``kind="baseline"``: comparing a run against it tells how much the LLM adds
over blind mutation, and it lets the whole pipeline run offline with no API
key. It answers in the shape a model is asked for (a short note, then one
fenced block tagged with the parent's language), so every task's own
extraction reads it like a model's answer.

A natural-language artifact (a behavioural specification) has nothing that
blind mutation could improve; :func:`offline_refusal` says so before a run
starts, from the task's declared artifact language.

Edits are made on the source text at the AST nodes' positions, so comments
and formatting survive; only if that fails does it fall back to
``ast.unparse``. A given (request seed, request hash) always yields the same
mutation, so a run with ``mutate`` is reproducible.
"""

from __future__ import annotations

import ast
import math
import random
import re
import time
from dataclasses import dataclass

from synthloop.core.types import Artifact
from synthloop.llm.base import LLMRequest, LLMResponse, Synthesizer, Usage

_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_OP_RE = re.compile(r"<=|>=|<|>")

#: artifact languages the Python variant mutates
PYTHON_LANGUAGES = frozenset({"python", "py"})
#: artifact languages the C variant mutates, with the tokenizer dialect used for each
C_LANGUAGES: dict[str, str] = {"c": "c", "h": "c", "cuda": "cuda", "cu": "cuda", "cuh": "cuda",
                               "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp"}
HOW_TO_GIVE_A_MODEL = ("--model openai/<model> with OPENAI_API_KEY set, --model anthropic/<model> with "
                       "ANTHROPIC_API_KEY set, --model openai/<model> --base-url URL for a local OpenAI-compatible "
                       "server, or --model ollama/<model>")


def can_mutate(language: str) -> bool:
    """Whether ``mutate`` has a variant for artifacts in ``language`` (Python, or C/CUDA kernels)."""
    lang = language.lower()
    return lang in PYTHON_LANGUAGES or lang in C_LANGUAGES


def offline_refusal(task_name: str, language: str, explicit: bool) -> str | None:
    """One line saying why ``mutate`` cannot run ``task_name`` and how to give a model; None if it can.

    ``explicit``: the user asked for mutate (else it is the fallback because no model was configured).
    """
    if can_mutate(language):
        return None
    why = ("--model mutate" if explicit else
           "the fallback because no model is configured: no --model, SYNTHLOOP_MODEL, API key or local Ollama")
    return (f"{task_name} needs a model: it evolves {language!r} artifacts, and mutate ({why}) only makes blind "
            f"edits to Python and C/CUDA code; give one with {HOW_TO_GIVE_A_MODEL}")


@dataclass
class _Site:
    """A mutable spot: a numeric literal or a comparison operator, with its byte span in the source."""

    kind: str  # "num" | "op"
    start: int
    end: int
    line: int
    value: object  # the number, or the ast op class
    weight: float


def _line_offsets(src: bytes) -> list[int]:
    offsets = [0]
    for i, b in enumerate(src):
        if b == 0x0A:
            offsets.append(i + 1)
    return offsets


def _collect_sites(tree: ast.AST, src: bytes) -> list[_Site]:
    offsets = _line_offsets(src)

    def pos(line: int, col: int) -> int:
        return offsets[line - 1] + col

    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # positions inside f-strings are unreliable before 3.12
            skip.update(id(n) for n in ast.walk(node))
    sites: list[_Site] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.end_lineno is not None:
            if isinstance(node.value, float) and not math.isfinite(node.value):
                continue
            sites.append(_Site("num", pos(node.lineno, node.col_offset), pos(node.end_lineno, node.end_col_offset),
                               node.lineno, node.value, 3.0 if isinstance(node.value, float) else 1.0))
        elif isinstance(node, ast.Compare):
            prev: ast.AST = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                if type(op) in _SWAP and prev.end_lineno is not None:
                    a = pos(prev.end_lineno, prev.end_col_offset or 0)
                    b = pos(right.lineno, right.col_offset)
                    m = _OP_RE.search(src[a:b].decode("utf-8", "replace"))
                    if m is not None:
                        # the gap holds only brackets, spaces and the operator, all ASCII
                        sites.append(_Site("op", a + m.start(), a + m.end(), right.lineno, type(op), 1.5))
                prev = right
    return sites


def _jitter_number(v: int | float, rng: random.Random) -> int | float:
    if isinstance(v, int):
        if abs(v) >= 10:
            new = int(round(v * math.exp(rng.gauss(0.0, 0.2))))
        else:
            new = v + rng.choice((-2, -1, 1, 2))
        return new if new != v else v + rng.choice((-1, 1))
    # mixed step sizes: small steps hill-climb near an optimum, large ones escape it
    sigma = rng.choice((0.01, 0.03, 0.1, 0.3))
    for _ in range(8):
        if v == 0.0:
            new = rng.gauss(0.0, sigma)
        elif rng.random() < 0.7:
            new = v * math.exp(rng.gauss(0.0, sigma))
        else:
            new = v + rng.gauss(0.0, sigma * abs(v))
        new = float(f"{new:.6g}")
        if math.isfinite(new) and new != v:
            return new
    return v * 1.01 if v else 0.01


def _fence(code: str, language: str) -> str:
    """Wrap code in a fence longer than any backtick run inside it, so extraction cannot cut it short."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{code.rstrip(chr(10))}\n{ticks}"


def _number_text(v: int | float) -> str:
    text = repr(v)
    return f"({text})" if v < 0 else text


def mutate_source(code: str, rng: random.Random, max_edits: int = 3) -> tuple[str, list[str]]:
    """Perturb 1..max_edits sites of ``code``; returns (new code, human-readable change notes).

    Raises ``SyntaxError`` if ``code`` does not parse. Returns ``(code, [])`` when nothing is mutable.
    """
    tree = ast.parse(code)
    src = code.encode("utf-8")
    sites = _collect_sites(tree, src)
    if not sites or max_edits < 1:
        return code, []
    # mostly single edits: several simultaneous blind edits rarely all help
    k = min(len(sites), rng.choices(range(1, max_edits + 1), weights=[0.5 ** i for i in range(max_edits)])[0])
    chosen: list[_Site] = []
    pool = list(sites)
    for _ in range(k):  # weighted sampling without replacement
        pick = rng.choices(range(len(pool)), weights=[s.weight for s in pool])[0]
        chosen.append(pool.pop(pick))
    edits: list[tuple[int, int, bytes]] = []
    notes: list[str] = []
    for s in chosen:
        if s.kind == "num":
            assert isinstance(s.value, (int, float))
            new_v = _jitter_number(s.value, rng)
            new_text = _number_text(new_v)
            notes.append(f"line {s.line}: {src[s.start:s.end].decode()} -> {new_text}")
        else:
            op = s.value
            new_op = _FLIP[op] if rng.random() < 0.15 else _SWAP[op]  # type: ignore[index]
            new_text = _SYMBOL[new_op]
            notes.append(f"line {s.line}: {_SYMBOL[op]} -> {new_text}")  # type: ignore[index]
        edits.append((s.start, s.end, new_text.encode()))
    out = src
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    new_code = out.decode("utf-8")
    try:
        ast.parse(new_code)
    except SyntaxError:  # pragma: no cover - defensive: fall back to a plain AST rewrite
        new_code = ast.unparse(tree)
        notes.append("(source edit failed; code re-rendered from the AST, comments lost)")
    return new_code, notes


class MutateSynthesizer(Synthesizer):
    """Offline baseline: blind mutation of the parent (Python AST, or C/CUDA tunables), never an LLM."""

    name = "mutate"
    kind = "baseline"

    def __init__(self, max_edits: int = 3) -> None:
        self.max_edits = max_edits

    async def complete(self, request: LLMRequest, parent: Artifact | None = None) -> LLMResponse:
        t0 = time.perf_counter()
        rhash = request.hash()
        rng = random.Random(f"{request.seed}:{rhash}")
        text = self._answer(parent, rng)
        return LLMResponse(text=text, model="mutate", provider="mutate", kind="baseline", usage=Usage(),
                           cost_usd=0.0, latency_s=time.perf_counter() - t0, attempts=1,
                           finish_reason="stop", request_hash=rhash)

    def _answer(self, parent: Artifact | None, rng: random.Random) -> str:
        if parent is None:
            return "mutate baseline: no parent program to mutate; nothing proposed."
        fence = _fence(parent.content, parent.language)
        lang = parent.language.lower()
        if lang in C_LANGUAGES:
            return self._answer_c(parent, rng, C_LANGUAGES[lang])
        if lang not in PYTHON_LANGUAGES:
            return f"mutate baseline: cannot mutate {parent.language} code; parent returned unchanged.\n\n{fence}"
        try:
            new_code, notes = mutate_source(parent.content, rng, self.max_edits)
        except SyntaxError as e:
            return f"mutate baseline: parent does not parse ({e.msg}); parent returned unchanged.\n\n{fence}"
        if not notes:
            return ("mutate baseline: no numeric constant or comparison to mutate; parent returned unchanged."
                    f"\n\n{fence}")
        return ("mutate baseline (no LLM) changed:\n" + "\n".join(f"- {n}" for n in notes)
                + "\n\n" + _fence(new_code, "python"))

    def _answer_c(self, parent: Artifact, rng: random.Random, dialect: str) -> str:
        """The C/CUDA variant; the fence carries the parent's own language tag, which the kernel task extracts."""
        from synthloop.llm.mutate_c import mutate_c_source

        new_code, notes = mutate_c_source(parent.content, rng, dialect, self.max_edits)
        if not notes:
            return ("mutate baseline: no tunable constant (#define, const, unroll, schedule chunk, loop step) and "
                    f"no loop to unroll; parent returned unchanged.\n\n{_fence(parent.content, parent.language)}")
        return ("mutate baseline (no LLM) changed:\n" + "\n".join(f"- {n}" for n in notes)
                + "\n\n" + _fence(new_code, parent.language))

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "provider": "mutate", "priced": True,
                "note": "offline baseline: AST mutation of constants and comparisons (Python), tokenizer-found "
                        "tunables (C/CUDA), no LLM"}
