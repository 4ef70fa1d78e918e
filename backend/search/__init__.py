"""Hyperparameter search with Optuna: a study is a job whose trials are ordinary runs.

- space.py    which settings vary and over what (a YAML/JSON file or the Search tab's table), checked
- studies.py  create_study / stop_study (checked first; nothing written on a refusal)
- driver.py   the supervisor's step: report, prune, tell, queue the next trial (a job kind, backend.runs.kinds)
- results.py  a study's report (trials, best) and Optuna's plots
- storage.py  Optuna's own database (workspace/search.db) and the Optuna study of a search

These import Optuna, so nothing is imported here: `from backend.search.studies import create_study`.
"""
