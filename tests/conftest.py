"""Test-session settings.

The suite runs in two xdist workers on a 2-core machine; one BLAS/OpenMP thread per
worker avoids oversubscription (torch's spinning worker threads are the worst case).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
