"""``python -m dexter_brain.serve``: the same as ``dexter-brain serve``."""

import sys

from dexter_brain.serve.command import main

sys.exit(main())
