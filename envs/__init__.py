"""Environments in the tutorial's protocol: ``reset() -> state``, ``step(action) -> (state, reward, done)``.

Use them by name, e.g. ``pgdist train --env envs.line:LineWalk`` from the repository's root.
"""
