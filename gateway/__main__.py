"""``python -m gateway`` is the ``threshold`` command."""

from gateway.cli import main

raise SystemExit(main())
