"""``python -m cnnstep`` is the same as the ``cnnstep`` command."""

import sys

from cnnstep.cli import main

sys.exit(main())
