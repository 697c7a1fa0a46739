"""Pure NumPy kernels: each operation is a forward function returning (y, cache)
and a backward function taking (dy, cache).  No state, no classes with weights."""
