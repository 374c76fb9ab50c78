"""Queueing models (numpy/scipy only; imports nothing of hera except :mod:`hera.errors`)."""
