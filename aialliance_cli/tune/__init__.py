"""Tuning: prepared (quantized) models, output agreement with the fp32 reference, and search.

``quantize`` builds and caches prepared models, ``accuracy`` compares a
candidate's outputs with the fp32 CPU-EP reference; the search and its records
build on both.
"""
