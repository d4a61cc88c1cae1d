"""The project's own suite uses que_testing, loaded through its pytest11 entry point."""
