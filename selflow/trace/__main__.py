"""``python -m selflow.trace [events] [fields]``: print docs/tracing.md's generated tables."""

import sys

from selflow.trace.events import main

sys.exit(main())
