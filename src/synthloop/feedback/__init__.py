"""Feedback engineering: what the synthesizer is shown after each evaluation.

``spec`` holds :class:`~synthloop.feedback.spec.FeedbackSpec` and the renderer that never reads
``Evaluation.private``; ``prompt`` builds prompts through it (the only road to a prompt).
"""
