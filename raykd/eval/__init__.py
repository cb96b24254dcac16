"""Evaluation: feature extraction (``features``), file readers (``readers``), the data-root layout
(``datasets``), one function per task (``tasks``, a registry), what to run (``planning``), the engine that runs
work items in-process or on a pool of Ray actors (``engine``), the results' tables and files (``results``),
``raykd eval`` (``run``) and the ELEVATER suite (``elevater``). Metric keys are ``<task>/<dataset>/<metric>``
(``metrics``).
"""
