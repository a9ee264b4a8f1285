"""What a cell's results folder holds, by name, and the version of that layout.

Names only, no behaviour: the results writer (miga/callbacks/results_writer.py) writes these
files, the folder's preparation (miga/callbacks/results_folder.py) checks and locks them, and the
report reads them; all three import the names from here, below them.
"""

from __future__ import annotations

SAMPLES_FILE = "samples.csv"
SUMMARY_FILE = "summary.json"
#: One part file per written batch, merged into SAMPLES_FILE at the end.
PARTS_DIR = "rows"
PROVENANCE_FILE = "provenance.json"
LOCK_FILE = ".lock"
#: Version of the results layout (rows/, samples.csv, summary.json keys). Bump on any change
#: that makes older folders unreadable; older folders are then refused, never mixed in.
RESULTS_FORMAT = 1
