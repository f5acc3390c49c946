"""Sweeps (many training runs from one config) and the device queue that runs them. Torch-free.

``sweep`` records trials as queued runs (:mod:`engine.sweeps.sweep`); the ``queue`` process starts
them on free slots and prunes the ones behind (:mod:`engine.sweeps.queue`, :mod:`engine.sweeps.pruning`);
``--sbatch`` writes a SLURM array instead (:mod:`engine.sweeps.array`); ``--optuna`` asks an Optuna
study for each trial (:mod:`engine.sweeps.study`).
"""
