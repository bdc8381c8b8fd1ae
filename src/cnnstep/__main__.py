"""``python -m cnnstep`` is the same as the ``cnnstep`` command."""

import sys

from cnnstep.cli.main import main

sys.exit(main())
