"""Session-wide test setup (each directory's conftest.py adds its own fixtures)."""

import os

# The suite forks sandboxed candidates from the pytest process after kernel tests have run numba-parallel
# code in it. numba's omp/tbb thread pools do not survive fork (LocalExecutor warns about exactly that);
# its workqueue layer does. Set before anything imports numba, which reads it at import.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
