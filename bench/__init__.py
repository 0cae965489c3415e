"""Tawasul's benchmark: the real server under load, beside two reference points.

Run it with ``python -m bench`` from the repository root; see README, "Benchmark".
"""
