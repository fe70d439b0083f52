"""``python -m seco`` (used by ``torchrun -m seco pretrain ...``)."""

import sys

from seco.cli import main

sys.exit(main())
