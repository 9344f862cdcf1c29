"""``python -m gateway.emulator``: run the emulator standalone."""

from gateway.emulator.cli import main

raise SystemExit(main())
