"""Exits at import."""

import sys

sys.exit(4)
