"""A syntax error (made at import time, so that linters can read this file)."""

exec("def broken(:\n    pass")
