"""Build the whole brain in one command: raw data -> corpora -> vocabulary -> three TRMs -> report.

Without ``--raw`` the embedded sample (a fictional user's records) is generated and used. On 2 CPU cores
the sample builds in about ten minutes; ``--quick`` is a smoke run (20-26 s on 2 busy cores, README "Figures").

    python build_trm_brain.py                       # the embedded sample
    python build_trm_brain.py --quick               # smoke run
    python build_trm_brain.py --raw path/to/raw     # your app's records
    python build_trm_brain.py --resume              # continue an interrupted build
"""

from __future__ import annotations

import sys

from dexter_brain.cli import main_build as main

if __name__ == "__main__":
    sys.exit(main())
