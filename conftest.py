"""The project's own suite uses que_testing (loaded through its pytest11 entry
point), and pytester to test the plugin as a user project would."""

pytest_plugins = ["pytester"]
