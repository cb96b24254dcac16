"""`raykd report`: a static HTML page with PNG plots of runs, sweeps and evaluations.

It reads only files (results.jsonl, TensorBoard event files, trials.csv, best.json, results.json: see
`raykd.report.sources`), so it sits just below the CLI and imports nothing else of raykd.
"""
