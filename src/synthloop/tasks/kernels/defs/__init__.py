"""The twelve Metal-Sci tasks, one module each (backend-neutral definitions)."""
