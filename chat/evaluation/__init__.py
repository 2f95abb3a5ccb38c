"""Answer quality, measured: `manage.py evaluate` and `manage.py generate_ground_truth`.

ground_truth.py reads and writes the question files, citations.py says what a citation is,
metrics.py scores one answer and a whole run, targets.py asks the questions (in this process
through the chat pipeline, or over HTTP), judge.py asks a model to rate answers, run.py ties
them together, report.py writes and compares the results.
"""
