"""The C/CUDA variant of ``mutate``: tunables found by the C tokenizer, on the real seed kernels.

It must change only the tokenizer-found tunables (never a comment, a string, an ``#include`` or an entry
point's signature), keep the CPU seeds compiling, answer in the fenced shape the kernel task extracts, and be
deterministic per (seed, request) like the Python variant.
"""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from pygments.lexers.c_cpp import CLexer
from pygments.lexers.c_like import CudaLexer
from pygments.token import Comment, String

from synthloop.core.types import Artifact
from synthloop.llm.base import LLMRequest
from synthloop.llm.extract import extract_code
from synthloop.llm.mutate import MutateSynthesizer, can_mutate, offline_refusal
from synthloop.llm.mutate_c import mutate_c_source, tunable_sites
from synthloop.tasks.kernels import TASK_NAMES, get_task

KERNEL = """#include <stdint.h>
#include "tile_16.h"
#define TILE 32 /* tile edge: 32 */
#define SCALE(x) ((x) * 4)
#define EPS 1e-6f
#if 0
#define DEAD 8
#endif
// block 64, unroll 4
static const char* NAME = "k 128";
static const int BLOCK = 256;
enum { CHUNK = 16 };

void k(const float* a, float* b, uint32_t n) {
    float w[3] = {0.25f, 0.5f, 0.25f};
    #pragma omp parallel for schedule(dynamic, 8)
    for (uint32_t i = 1; i < n - 1; i += 2) {
        #pragma GCC unroll 4
        for (int t = 0; t < 3; ++t) b[i] += w[t] * a[i + t - 1];
        for (int t = 0; t < 2; ++t) b[i + 1] = a[i + 1];
    }
    #pragma omp parallel for schedule(static)
    for (uint32_t i = 0; i < n; ++i) b[i] *= 2.0f;
    #pragma omp parallel for collapse(2)
    for (uint32_t j = 0; j < 2; ++j)
        for (uint32_t i = 0; i < n; ++i) b[i] += 1.0f;
}
"""

LEXER = {"c": CLexer, "cuda": CudaLexer}


def seeds() -> list[tuple[str, str, str]]:
    """(task, dialect, source) for every seed kernel, CPU and CUDA."""
    return [(name, dialect, get_task(name).seed_source(backend))
            for name in TASK_NAMES for backend, dialect in (("cpu", "c"), ("cuda", "cuda"))]


def untouchable(code: str, dialect: str) -> list[str]:
    """Comments, strings and #include targets, in order: what a mutation must leave byte for byte."""
    return [v for _, t, v in LEXER[dialect]().get_tokens_unprocessed(code)
            if (t in Comment and t not in Comment.Preproc) or t in String or t in Comment.PreprocFile]


def signature(code: str, entry: str) -> str:
    """An entry point's declaration, from its name to the opening brace (the ABI the harness calls)."""
    m = re.search(rf"\b{re.escape(entry)}\s*\([^{{]*\{{", code)
    assert m is not None, entry
    return m.group(0)


def test_sites_are_the_tunables_of_a_kernel_and_nothing_in_comments_strings_or_includes() -> None:
    found = {(s.kind, s.line, s.text) for s in tunable_sites(KERNEL, "c")}
    assert found == {
        ("define", 3, "32"), ("define", 5, "1e-6f"), ("const", 11, "256"), ("const", 12, "16"),
        ("chunk", 16, "8"), ("step", 17, "2"), ("unroll", 18, "4"),
        ("insert_unroll", 20, ""), ("insert_chunk", 22, ""),
    }, found
    # not: "tile_16.h", the comments' 32/64/4, "k 128", the function-like macro, #if 0, w[3], the
    # initialiser, i = 1, n - 1, index offsets, loop bounds, the 2.0f in the body, loops under a pragma,
    # the inner loop of a collapse(2) nest (a pragma between collapsed loops does not compile)


def test_every_mutation_of_every_seed_changes_only_tunables_and_keeps_signatures() -> None:
    changed = 0
    for name, dialect, code in seeds():
        entries = [e.name for e in get_task(name).entries()]
        keep = untouchable(code, dialect)
        tunable = bool(tunable_sites(code, dialect))
        for s in range(4):
            new, notes = mutate_c_source(code, random.Random(s), dialect)
            if not tunable:
                assert (new, notes) == (code, []), name
                continue
            changed += 1
            assert new != code and 1 <= len(notes) <= 3, (name, notes)
            assert untouchable(new, dialect) == keep, (name, dialect, notes)
            for entry in entries:
                assert signature(new, entry) == signature(code, entry), (name, entry, notes)
            # every changed line is a noted site or an inserted unroll pragma; every other line is intact
            old_lines, new_lines = code.splitlines(), new.splitlines()
            inserted = [ln for ln in new_lines if re.fullmatch(r"\s*#pragma (GCC )?unroll (2|4|8|16)", ln)]
            kept = [ln for ln in new_lines if ln not in inserted or ln in old_lines]
            assert len(kept) == len(old_lines), (name, notes)
            noted = {int(n.split(":")[0].removeprefix("line ")) for n in notes}
            for i, (a, b) in enumerate(zip(old_lines, kept, strict=True), start=1):
                if a != b:
                    assert i in noted, (name, i, a, b, notes)
                    assert re.sub(r"[\d.]+[uUlLfF]*|,\s*", "", a) == re.sub(r"[\d.]+[uUlLfF]*|,\s*", "", b)
    assert changed >= 4 * 20  # all CPU seeds and most CUDA seeds have something to tune


@pytest.mark.parametrize("name", TASK_NAMES)
def test_mutated_cpu_seeds_still_compile(name: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthloop.tasks.kernels.cpu_backend import compile_c

    monkeypatch.setenv("SYNTHLOOP_CACHE", str(tmp_path))
    code = get_task(name).seed_source("cpu")
    for s in range(2):
        new, notes = mutate_c_source(code, random.Random(f"{name}:{s}"), "c")
        assert notes and new != code
        res = compile_c(new)
        assert res.ok, (notes, res.log[-2000:])


def test_integer_style_and_ladders_are_kept() -> None:
    code = "#define A 0x40u\nconst int B = 8;\n__global__ void __launch_bounds__(256) k(int* x) {\n" \
           "#pragma unroll 4\n    for (int i = 0; i < 8; ++i) x[i] = 0;\n}\n"
    for s in range(40):
        new, _ = mutate_c_source(code, random.Random(s), "cuda", max_edits=3)
        a = re.search(r"#define A (\S+)", new)
        assert a is not None and re.fullmatch(r"0x[0-9A-F]+u", a.group(1)) and int(a.group(1)[2:-1], 16) > 0
        bounds = int(re.search(r"__launch_bounds__\((\d+)\)", new).group(1))  # type: ignore[union-attr]
        assert bounds in (32, 64, 128, 256, 512, 1024)
        unroll = int(re.search(r"#pragma unroll (\d+)", new).group(1))  # type: ignore[union-attr]
        assert unroll in (1, 2, 4, 8, 16)
        assert int(re.search(r"const int B = (\d+);", new).group(1)) >= 1  # type: ignore[union-attr]


def answer(parent: Artifact, seed: int = 1, content: str = "make it faster") -> str:
    req = LLMRequest(messages=[{"role": "user", "content": content}], seed=seed)
    resp = asyncio.run(MutateSynthesizer().complete(req, parent))
    assert resp.kind == "baseline" and resp.cost_usd == 0.0
    return resp.text


@pytest.mark.parametrize(("backend", "language"), [("cpu", "c"), ("cuda", "cuda")])
def test_answer_is_a_fenced_block_of_the_parents_language_and_deterministic(backend: str, language: str) -> None:
    parent = Artifact(get_task("lj").seed_source(backend), language)
    text = answer(parent, seed=3)
    assert text == answer(parent, seed=3)
    assert f"```{language}\n" in text and "changed:" in text
    code = extract_code(text, parent.content, language)
    assert code != parent.content and "#define MAX_PER_CELL" in code
    outs = {answer(parent, seed=s) for s in range(6)} | {answer(parent, content=f"p{i}") for i in range(6)}
    assert len(outs) > 6


def test_nothing_to_tune_returns_the_parent_unchanged() -> None:
    parent = Artifact(get_task("saxpy").seed_source("cuda"), "cuda")
    text = answer(parent)
    assert "unchanged" in text and extract_code(text, None, "cuda") == parent.content


def test_text_artifacts_are_refused_in_one_line_that_says_how_to_give_a_model() -> None:
    assert can_mutate("python") and can_mutate("c") and can_mutate("CUDA") and not can_mutate("text")
    assert offline_refusal("kernels/heat2d", "c", explicit=False) is None
    for explicit in (True, False):
        msg = offline_refusal("safety/boat_race", "text", explicit)
        assert msg is not None and "\n" not in msg and "needs a model" in msg
        assert "--model openai/<model>" in msg and "OPENAI_API_KEY" in msg and "--base-url" in msg
        assert "anthropic/<model>" in msg and "ollama/<model>" in msg
        assert ("no model is configured" in msg) is not explicit
