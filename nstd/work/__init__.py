"""Jobs -> paintings: the worker child that owns the GPU, its supervisor, and the redis backend's hosts."""
