"""``python -m que.cli``: the ``que`` command."""

import sys

from que.cli import main

sys.exit(main())
