"""Tuning: prepared (quantized) models, agreement with the fp32 reference, search and records.

    quantize.py   prepared models (int8 dynamic/static QDQ, fp16), cached
    accuracy.py   a candidate's outputs against the fp32 CPU-EP reference
    space.py      the search space from the machine (EPs, precisions, threads, ...)
    search.py     coordinate descent under a budget, then an alternating final
    trial.py      one trial in a worker process
    records.py    tuned records per (hardware, model, ORT build, objective)
    apply.py      run and bench use a matching record

The core imports neither typer nor rich.
"""
