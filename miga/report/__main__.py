"""`python -m miga.report <sweep>` (miga.report.cli)."""

from miga.report.cli import main

raise SystemExit(main())
