"""The application layer: the `speechcmd` command line and the Qt window (Qt is imported only by the GUI)."""
import os

# numpy's OpenBLAS starts a worker thread per core that busy-waits after every call. The live path
# multiplies small matrices (one GRU step per 10 ms frame), which one thread does best, and the
# spinning second thread cost 7.9% of a core in `listen` (13.4% -> 5.6% with one thread, docs/LIVE.md).
# Set before anything imports numpy (this package is imported first by the `speechcmd` entry point);
# a user's own setting wins. torch keeps its own thread pool (set per command).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
