"""Run configuration: YAML + --set overrides, strict keys, one-line errors."""

import pytest

from synthloop.config import ConfigError, apply_override, build_config, load_yaml


def test_set_overrides_nested_and_parses_values():
    data: dict = {"task": "examples/constant"}
    apply_override(data, "search.iterations=7")
    apply_override(data, "feedback.metrics=[a, b]")
    apply_override(data, "task_options.n=12")
    cfg = build_config(data)
    assert cfg.search.iterations == 7
    assert cfg.feedback.metrics == ["a", "b"]
    assert cfg.task_options == {"n": 12}


def test_unknown_key_names_valid_choices():
    with pytest.raises(ConfigError) as e:
        apply_override({}, "search.iteratons=3")
    msg = str(e.value)
    assert "iteratons" in msg and "iterations" in msg and "\n" not in msg


def test_unknown_yaml_key_rejected(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: examples/constant\nsearch:\n  stratgy: refine\n")
    with pytest.raises(ConfigError) as e:
        build_config(load_yaml(p))
    assert "search.stratgy" in str(e.value)


def test_malformed_yaml_is_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_yaml(p)
    assert "not valid YAML" in str(e.value) and "\n" not in str(e.value)


def test_bad_value_reports_field():
    with pytest.raises(ConfigError) as e:
        build_config({"task": "x", "search": {"strategy": "annealing"}})
    assert "search.strategy" in str(e.value)


def test_digest_ignores_output_dir():
    a = build_config({"task": "t", "out": "a"})
    b = build_config({"task": "t", "out": "b"})
    c = build_config({"task": "t", "search": {"iterations": 3}})
    assert a.digest() == b.digest() != c.digest()
