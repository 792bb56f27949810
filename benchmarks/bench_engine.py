"""Engine overhead benchmark; same as `synthloop bench engine`. See synthloop.bench.engine for what it measures."""

from synthloop.bench.engine import main

if __name__ == "__main__":
    raise SystemExit(main())
