"""Measure drop-in compatibility: run PyTorch3D's own tests against ``diffrend.compat``.

``python -m diffrend.compat.conformance [TESTS_DIR]`` (see :mod:`.run`).
"""
