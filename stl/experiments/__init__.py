"""The paper's experiments as library functions (Fig. 3, Tables 1-2, Fig. 6, STL vs the
trivial references, speed benchmarks). They take typed values (a
:class:`stl.models.spec.ModelSpec`, an :class:`stl.core.config.STLConfig`, options
dataclasses), never an argparse namespace; :mod:`stl.cli` builds those from the command line.

=============================  =========================================  ==================
module                         function                                   command
=============================  =========================================  ==================
:mod:`.fig3`                   :func:`~.fig3.run_fig3`                    ``stl fig3``
:mod:`.table1`, :mod:`.table2` ``run_table1``, ``run_table2``             ``stl table 1|2``
:mod:`.fig6`                   :func:`~.fig6.run_fig6`                    ``stl fig6``
:mod:`.stl_vs_trivial`         ``run_stl_vs_trivial``                     ``stl stl650``
:mod:`.bench`                  ``run_benchmark``, ``run_detection_bench`` ``stl bench``
:mod:`.detection`              what the detector experiments share        --
=============================  =========================================  ==================
"""
