"""``python -m kneehip_bn.cli``: the ``kneehip`` command."""

import sys

from kneehip_bn.cli import main

sys.exit(main())
