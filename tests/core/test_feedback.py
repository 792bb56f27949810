"""FeedbackSpec rendering: what the synthesizer may see, and what it must never see."""

from synthloop.core.types import CaseResult, Evaluation, MetricSpec
from synthloop.feedback.spec import FeedbackSpec, render_evaluation

METRICS = [
    MetricSpec("reward", "max", "mean return"),
    MetricSpec("equality", "max", "1 - Gini"),
    MetricSpec("latency", "min", "seconds"),
]


def _ev() -> Evaluation:
    return Evaluation(
        valid=True, score=12.5, metrics={"reward": 12.5, "equality": 0.8, "latency": 0.25},
        diagnostics=["case a ok", "case b slow"], private={"hidden_rstar": 987654.0, "heldout": 4242.0},
        channels={"danger": [0, 1, 0]},
        cases=[CaseResult("a", True, 12.0), CaseResult("b", True, 13.0)],
    )


def test_sparse_shows_only_the_objective():
    text = render_evaluation(_ev(), FeedbackSpec(mode="sparse", diagnostics=False), METRICS, "reward")
    assert text == "reward: 12.5"


def test_dense_shows_metrics_with_direction_and_definition():
    text = render_evaluation(_ev(), FeedbackSpec(mode="dense"), METRICS, "reward")
    assert "equality: 0.8 (higher is better; 1 - Gini)" in text
    assert "latency: 0.25 (lower is better; seconds)" in text
    assert "case b slow" in text


def test_dense_metric_subset_and_order():
    spec = FeedbackSpec(mode="dense", metrics=["latency"], diagnostics=False, describe_metrics=False)
    text = render_evaluation(_ev(), spec, METRICS, "reward")
    assert text.splitlines() == ["reward: 12.5", "latency: 0.25"]


def test_private_values_never_rendered_in_any_mode():
    for mode in ("sparse", "dense", "bit", "none"):
        for per_case in (False, True):
            spec = FeedbackSpec(mode=mode, per_case=per_case, channels=["danger"] if mode == "bit" else [])
            text = render_evaluation(_ev(), spec, METRICS, "reward")
            assert "987654" not in text and "4242" not in text and "hidden_rstar" not in text


def test_bit_mode_shows_channel_not_score():
    text = render_evaluation(_ev(), FeedbackSpec(mode="bit", channels=["danger"], diagnostics=False), METRICS, "reward")
    assert "danger: [0, 1, 0]" in text
    assert "12.5" not in text


def test_invalid_evaluation_says_so_and_keeps_diagnostics():
    ev = Evaluation.invalid("Traceback: ZeroDivisionError", error_kind="exception")
    text = render_evaluation(ev, FeedbackSpec(mode="dense"), METRICS, "reward")
    assert text.startswith("INVALID (exception)")
    assert "ZeroDivisionError" in text


def test_diagnostics_are_capped():
    ev = Evaluation(valid=True, score=1.0, diagnostics=[f"line {i}" for i in range(100)])
    text = render_evaluation(ev, FeedbackSpec(max_diagnostic_lines=3), METRICS, "reward")
    assert "line 2" in text and "line 3" not in text and "97 more lines omitted" in text


def test_non_finite_score_becomes_invalid():
    ev = Evaluation(valid=True, score=float("nan"))
    assert not ev.valid and ev.score is None and ev.error_kind == "non_finite"


def test_safety_channel_renders_reported_bits_only():
    from synthloop.oversight.channels import DangerSignal, SafetyChannel

    sig = DangerSignal(unit="ep1", steps=6, true_steps=(2,), reported_steps=(2, 5))
    ch = SafetyChannel(name="danger", granularity="step", false_positive_rate=0.2, signals=(sig,))
    ev = Evaluation(valid=True, score=1.0, channels={"danger": ch.to_dict()})
    text = render_evaluation(ev, FeedbackSpec(mode="bit", channels=["danger"]), METRICS, "reward")
    assert "true" not in text.lower()
    assert "5" in text  # the reported (spurious) warning is visible
