"""``python -m zegosim.zego``: run the emulator in the foreground (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
