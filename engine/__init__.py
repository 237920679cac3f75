"""Shared trainer package: training loop, evaluation, optimisers, checkpoints, logging.

Submodules are imported explicitly (``from engine.build import ...``); this file stays minimal so
that importing the config schema does not pull in torch or W&B.
"""
