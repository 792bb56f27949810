"""The ``mutate`` baseline: deterministic, changes constants/operators, output parses, never an LLM."""

from __future__ import annotations

import ast
import asyncio
import random

from synthloop.core.types import Artifact
from synthloop.llm.base import LLMRequest
from synthloop.llm.extract import extract_code
from synthloop.llm.mutate import MutateSynthesizer, mutate_source

SEED_CODE = '''"""Pack circles."""
import numpy as np

N = 26  # number of circles


def radii(centers, margin=0.05):
    out = []
    for i, c in enumerate(centers):
        r = min(c[0], c[1], 1.0 - c[0], 1.0 - c[1]) - margin
        if r < 0.0:
            r = 0.0
        elif r >= 0.5:
            r = 0.5
        out.append(r * 0.9)
    return np.array(out)
'''


def complete(parent: Artifact | None, seed: int | None = 1, content: str = "improve") -> str:
    req = LLMRequest(messages=[{"role": "user", "content": content}], seed=seed)
    resp = asyncio.run(MutateSynthesizer().complete(req, parent))
    assert resp.kind == "baseline" and resp.provider == "mutate" and resp.cost_usd == 0.0
    assert resp.usage.input_tokens == 0 and resp.usage.output_tokens == 0
    assert resp.request_hash == req.hash()
    return resp.text


def test_deterministic_for_same_seed_and_request() -> None:
    parent = Artifact(SEED_CODE)
    assert complete(parent, seed=3) == complete(parent, seed=3)


def test_differs_across_seeds_and_prompts() -> None:
    parent = Artifact(SEED_CODE)
    outs = {complete(parent, seed=s) for s in range(10)} | {complete(parent, content=f"p{i}") for i in range(10)}
    assert len(outs) > 10


def test_output_parses_and_changes_code_keeping_comments() -> None:
    parent = Artifact(SEED_CODE)
    for s in range(40):
        code = extract_code(complete(parent, seed=s), SEED_CODE)
        ast.parse(code)
        assert code != SEED_CODE
        assert "# number of circles" in code and '"""Pack circles."""' in code


def test_changes_constants_and_operators() -> None:
    saw_number = saw_operator = False
    orig = ast.dump(ast.parse(SEED_CODE))
    for s in range(60):
        new, notes = mutate_source(SEED_CODE, random.Random(s))
        assert 1 <= len(notes) <= 3 and ast.dump(ast.parse(new)) != orig
        for note in notes:
            lhs = note.split(": ", 1)[1].split(" -> ")[0]
            if lhs in ("<", "<=", ">", ">="):
                saw_operator = True
            else:
                saw_number = True
    assert saw_number and saw_operator


def test_ints_stay_ints_and_bools_untouched() -> None:
    code = "flag = True\nn = 7\n"
    for s in range(20):
        new, _ = mutate_source(code, random.Random(s))
        tree = ast.parse(new)
        values = [node.value.value for node in tree.body if isinstance(node.value, ast.Constant)]
        assert values[0] is True
        n_node = tree.body[1].value
        assert isinstance(n_node, ast.Constant) and type(n_node.value) is int and n_node.value != 7 or \
            isinstance(n_node, ast.UnaryOp)  # a negative int is written as (-k)


def test_negative_result_stays_valid() -> None:
    code = "x = 2 - 1\ny = a<b\n"
    for s in range(50):
        new, _ = mutate_source(code, random.Random(s))
        ast.parse(new)


def test_operator_swap_examples() -> None:
    code = "ok = (a) < (b)\n"
    new, notes = mutate_source(code, random.Random(0))
    assert new in ("ok = (a) <= (b)\n", "ok = (a) > (b)\n")


def test_unicode_before_constant() -> None:
    code = "s = 'héllo'; x = 0.5\n"
    new, _ = mutate_source(code, random.Random(1))
    assert new.startswith("s = 'héllo'; x = ") and ast.parse(new)


def test_no_parent_or_nothing_mutable() -> None:
    assert "no parent" in complete(None)
    text = complete(Artifact("print('hi')\n"))
    assert "unchanged" in text and extract_code(text, None) == "print('hi')\n"
    text = complete(Artifact("def f(:\n"))
    assert "does not parse" in text


def test_fstring_constants_are_left_alone() -> None:
    code = "x = 1.5\nmsg = f'{x:.3f} {x + 2}'\n"
    for s in range(20):
        new, _ = mutate_source(code, random.Random(s))
        assert "msg = f'{x:.3f} {x + 2}'" in new


def test_describe_says_baseline() -> None:
    d = MutateSynthesizer().describe()
    assert d["kind"] == "baseline" and d["name"] == "mutate" and "no LLM" in d["note"]
