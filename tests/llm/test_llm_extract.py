"""Code extraction: fenced blocks, SEARCH/REPLACE edits, bare code, and the error messages the model sees."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthloop.llm.extract import ExtractionError, extract_code, find_code_blocks

PARENT = """import math


def f(x):
    # scale it
    y = x * 2
    if y > 10:
        return y - 1
    return y


def g():
    return f(3)
"""


def test_tagged_block() -> None:
    text = "Here you go:\n```python\nx = 1\n```\nThat sets x."
    assert extract_code(text, None) == "x = 1\n"


def test_untagged_block() -> None:
    assert extract_code("```\ndef f():\n    return 2\n```", None) == "def f():\n    return 2\n"


def test_prefers_language_block_over_longer_other_language() -> None:
    text = ("Run it with:\n```bash\npip install numpy scipy matplotlib pandas && python main.py --long-flag\n```\n"
            "Code:\n```python\nx = 1\n```\n")
    assert extract_code(text, None) == "x = 1\n"


def test_longest_of_several_matching_blocks() -> None:
    text = "```python\nf(1)\n```\nFull program:\n```py\ndef f(a):\n    return a\n\nf(1)\n```"
    assert extract_code(text, None) == "def f(a):\n    return a\n\nf(1)\n"


def test_untagged_preferred_over_other_tag_for_python() -> None:
    text = "```json\n{\"a\": 1, \"b\": [1, 2, 3, 4, 5, 6, 7]}\n```\n```\nx = 2\n```"
    assert extract_code(text, None) == "x = 2\n"


def test_longer_fence_wraps_code_with_backticks() -> None:
    text = "````python\ns = '''\n```\n'''\n````"
    assert extract_code(text, None) == "s = '''\n```\n'''\n"


def test_crlf_answer() -> None:
    assert extract_code("```python\r\nx = 1\r\ny = 2\r\n```\r\n", None) == "x = 1\ny = 2\n"


def test_c_and_cuda_languages() -> None:
    text = "```cuda\n__global__ void k() {}\n```\n```python\nx=1\n```"
    assert extract_code(text, None, language="cuda") == "__global__ void k() {}\n"
    assert extract_code("```c\nint main(){}\n```", None, language="c") == "int main(){}\n"


def test_unterminated_fence_is_reported() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("Sure:\n```python\ndef f():\n    return 1\n", None)
    msg = str(ei.value)
    assert "line 2" in msg and "never closed" in msg


def test_no_code_block() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("I think you should increase the radius of each circle.", PARENT)
    msg = str(ei.value)
    assert "No code block found" in msg and "```python" in msg and "SEARCH/REPLACE" in msg


def test_bare_python_answer_accepted() -> None:
    code = "import math\n\ndef f(x):\n    return math.sqrt(x)\n"
    assert extract_code(code, None) == code


def test_bare_prose_that_happens_to_parse_is_rejected() -> None:
    with pytest.raises(ExtractionError):
        extract_code("hello", None)


def test_text_language_takes_whole_answer() -> None:
    assert extract_code("The spec: always be kind.", None, language="text") == "The spec: always be kind.\n"


def test_search_replace_single() -> None:
    text = "```python\n<<<<<<< SEARCH\n    y = x * 2\n=======\n    y = x * 3\n>>>>>>> REPLACE\n```"
    out = extract_code(text, PARENT)
    assert "y = x * 3" in out and "y = x * 2" not in out and "# scale it" in out


def test_search_replace_several_in_order() -> None:
    text = ("<<<<<<< SEARCH\n    y = x * 2\n=======\n    y = x * 4\n>>>>>>> REPLACE\n"
            "and\n<<<<<<< SEARCH\n    y = x * 4\n    if y > 10:\n=======\n    y = x * 5\n    if y >= 10:\n"
            ">>>>>>> REPLACE\n"
            "<<<<<<< SEARCH\ndef g():\n    return f(3)\n=======\n>>>>>>> REPLACE\n")
    out = extract_code(text, PARENT)
    assert "y = x * 5" in out and "if y >= 10:" in out and "def g" not in out
    ast.parse(out)


def test_search_replace_whitespace_tolerant() -> None:
    # trailing spaces in the search and wrong indentation still match line by line; indentation is fixed
    text = "<<<<<<< SEARCH\nif y > 10:   \n    return y - 1\n=======\nif y > 11:\n    return y - 2\n>>>>>>> REPLACE"
    out = extract_code(text, PARENT)
    assert "    if y > 11:\n        return y - 2\n" in out
    ast.parse(out)


def test_search_does_not_match_inside_a_line() -> None:
    parent = "max = 10\nx = 1\n"
    out = extract_code("<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE", parent)
    assert out == "max = 10\nx = 2\n"


def test_search_block_not_found_names_block_and_first_line() -> None:
    text = ("<<<<<<< SEARCH\n    y = x * 2\n=======\n    y = x * 3\n>>>>>>> REPLACE\n"
            "<<<<<<< SEARCH\n    z = nothing_here()\n    more()\n=======\n    z = 1\n>>>>>>> REPLACE\n")
    with pytest.raises(ExtractionError) as ei:
        extract_code(text, PARENT)
    msg = str(ei.value)
    assert "SEARCH block 2 of 2" in msg and "'z = nothing_here()'" in msg and "copied exactly" in msg


def test_diff_without_parent() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE", None)
    assert "no current code" in str(ei.value)


def test_unterminated_diff_block() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("<<<<<<< SEARCH\n    y = x * 2\n=======\n    y = x * 3\n", PARENT)
    assert "not terminated" in str(ei.value) and "REPLACE" in str(ei.value)


def test_empty_search_block() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE", PARENT)
    assert "empty" in str(ei.value)


def test_empty_block_is_reported() -> None:
    with pytest.raises(ExtractionError) as ei:
        extract_code("Here:\n```python\n\n```", None)
    assert "line 2 is empty" in str(ei.value)


def test_deleting_lines_leaves_no_blank() -> None:
    out = extract_code("<<<<<<< SEARCH\nb = 2\n=======\n>>>>>>> REPLACE", "a = 1\nb = 2\nc = 3")
    assert out == "a = 1\nc = 3"


def test_find_code_blocks_reports_lines() -> None:
    blocks, open_block = find_code_blocks("a\n```py\nx\n```\nb\n```\ny\n```\n")
    assert [(b.lang, b.code, b.line) for b in blocks] == [("py", "x\n", 2), ("", "y\n", 6)]
    assert open_block is None


# ----------------------------------------------------------------- properties

_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                max_size=40)
_code = st.lists(_line, min_size=1, max_size=15).map(lambda ls: "\n".join(ls) + "\n").filter(str.strip)


@settings(max_examples=200, deadline=None)
@given(code=_code, prose=_line, tag=st.sampled_from(["python", "py", ""]))
def test_fenced_block_round_trips(code: str, prose: str, tag: str) -> None:
    """Any code, wrapped in a fence longer than its longest backtick run, comes back byte for byte."""
    longest = max((len(r) for r in code.replace("`", "`\0").split("\0") if set(r) == {"`"}), default=0)
    run = 0
    for ch in code:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    prose = prose.replace("`", "'").replace("<", "(")
    text = f"{prose}\n{fence}{tag}\n{code}{fence}\nDone."
    assert extract_code(text, None) == code


_assign = st.builds(lambda name, value: f"{name} = {value}", st.sampled_from("abcdefghijklmnop"),
                    st.integers(0, 9999))


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(_assign, min_size=2, max_size=12, unique=True), data=st.data())
def test_search_replace_applies_exactly(lines: list[str], data: st.DataObject) -> None:
    """Replacing a run of lines with new lines equals the list splice."""
    parent = "\n".join(lines) + "\n"
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(i + 1, len(lines)))
    new = data.draw(st.lists(_assign.map(lambda line: "new_" + line), max_size=3))
    text = ("<<<<<<< SEARCH\n" + "".join(x + "\n" for x in lines[i:j]) + "=======\n"
            + "".join(x + "\n" for x in new) + ">>>>>>> REPLACE\n")
    expected_lines = lines[:i] + new + lines[j:]
    out = extract_code(text, parent)
    assert out == "".join(x + "\n" for x in expected_lines)
