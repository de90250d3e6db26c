"""Quality-control pictures of a run: figures (arrays in, PNG bytes out), the page, the metadata.

Everything here is pure drawing: the QC stage (:mod:`alignprep.stages.qc`) reads the run's own
outputs and hands arrays to these modules; nothing here reads the data root or downloads.
"""
