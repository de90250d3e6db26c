"""The orchestration: validation builds one plan of typed work; executors run it; reports.

``plan`` (work items per mouse and phase), ``tasks`` (one item inside any executor: skip when
proven unchanged, else run its stage and record what it read), ``executors`` (serial, process
pool, asyncio, Dask), ``state`` (re-run fingerprints), ``report`` (datapackage, provenance, run
report), ``collect`` (merge slice runs), ``lock`` (one run per results root), ``run`` (the whole
job).
"""
