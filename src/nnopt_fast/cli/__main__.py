"""``python -m nnopt_fast.cli``: the ``nnopt-fast`` command."""

import sys

from .main import main

sys.exit(main())
