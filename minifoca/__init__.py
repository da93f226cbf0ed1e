"""minifoca: FOCA as Algorithm 1 reads, line by line, with explicit gradients (NumPy or CuPy).

The specification the rest of the project is tested against. Start with foca.py.
"""
