"""Oversight: signals kept apart from the reward and the statistics that verdicts rest on.

``channels`` records safety channels beside the score (never inside it); ``stats`` holds the
t-intervals used by keep rules and reports. The one held-out gate, validators and integrity
monitors move here in later slices of issue 15.
"""
