"""Benchmark for the social-dilemma engine; prints one JSON object.

Thin wrapper: the logic lives in ``synthloop.tasks.ssd.bench`` so that
``synthloop bench ssd`` and this script measure the same thing.
"""

from synthloop.tasks.ssd.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
