"""``python -m langgraph_hera.cli``: the ``hera`` command."""

import sys

from langgraph_hera.cli import main

sys.exit(main())
