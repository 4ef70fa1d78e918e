"""`python -m backend.worker RUN_ID`: the run worker's earlier name, kept so existing commands still work.

The worker lives in backend/runs/worker.py (`python -m backend.runs.worker RUN_ID`).
"""

import sys

from backend.runs.worker import main

if __name__ == "__main__":
    sys.exit(main())
