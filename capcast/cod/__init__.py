"""Clustering-On-Difficulty (COD; Xu et al. 2025, arXiv 2502.17262): predictable subsets from per-instance difficulty.

:mod:`.instances` (per-instance records from a samples table or a store), :mod:`.features`,
:mod:`.clustering`, :mod:`.cluster_law`, :mod:`.mapping`, :mod:`.pipeline` (:func:`fit_cod`),
:mod:`.law` (``--method cod``), :mod:`.plots`. See docs/cod.md.
"""
