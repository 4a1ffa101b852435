"""Many estimates read together: ``zsmalloc report RESULTS.json... [--html FILE]``.

Module map: ``results`` (one ``estimate --json`` file read back), ``summary``
(the fleet's totals, spread, best algorithm and one zram setting, argued),
``plots`` (matplotlib figures as SVG data URIs), ``html`` (the self-contained
page), ``render`` (the same as text on a terminal).  The estimates themselves
may come from many machines, or from one Dask cluster
(:mod:`zsmalloc.estimate.cluster`).
"""
