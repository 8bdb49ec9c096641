import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ranx compiles its metrics with numba on first use: 30-55 s a test on a 2-core CI machine, for
# toy-sized runs. The tests check values, not speed, so they run the same functions uncompiled
# (about 90 s less per suite); the benchmarks keep the compiled ones.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
