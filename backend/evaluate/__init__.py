"""Evaluation: models (a base, completed runs, an export folder) scored on suites, as background jobs.

- suites.py   a shipped suite or a file (multiple choice: question,A-D,answer; generation: prompt,reference),
              checked row by row; SHIPPED names the offline suites in examples/
- scoring.py  per-sample metrics (exact, numeric, regex, contains, bleu4, rouge_l, json), bootstrap 95% CI
- engine.py   load a model as the playground does; multiple choice through lm-evaluation-harness
              (log-likelihood, few-shot), generation through greedy chat answers
- jobs.py     create_evaluation (checks everything, then queues), get/list/cancel, summary, samples
- driver.py   advance_evaluations: the supervisor's step (start, restart a vanished process)
- cluster.py  evaluations on the Ray cluster (--executor ray): each a job there, submitted and watched
- worker.py   python -m backend.evaluate.worker ID: score each (model, suite), write samples and results
- judge.py    a model as judge: pairwise in both orders (a tie when they disagree) or a rubric; human-label agreement
- judging.py  an evaluation's judge step: the answers graded, verdicts and reasons as results and samples

Nothing is imported here (engine.py pulls in torch and lm-eval): `from backend.evaluate.jobs import ...`.
"""
