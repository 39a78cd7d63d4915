"""The paper's experiments as library functions. They take typed values (a
:class:`stl.models.spec.ModelSpec`, an :class:`stl.core.config.STLConfig`, options
dataclasses), never an argparse namespace; :mod:`stl.cli` builds those from the command line.
The figure and table functions write PNG + PDF figures and CSV / Markdown tables and return the
numbers (``bench``, ``bench_scale`` and ``eval_profiles`` write their reports only).

=============================  ==============================================  ==========================
module                         what                                            command
=============================  ==============================================  ==========================
:mod:`.fig3`                   Fig. 3 (:func:`~.fig3.run_fig3`)                ``stl fig3``
:mod:`.table1`, :mod:`.table2` Tables 1-2 (``run_table1``, ``run_table2``)     ``stl table 1|2``
:mod:`.fig6`                   Fig. 6 (:func:`~.fig6.run_fig6`)                ``stl fig6``
:mod:`.stl_vs_trivial`         STL vs WHOLE-IMAGE / CENTER                     ``stl stl650``
:mod:`.bench`                  speed benchmarks                                ``stl bench``
:mod:`.detection`              what the detector experiments share             --
:mod:`.fig2`                   Fig. 2, the s_drop surface of Eq. 4             ``stl fig2``
:mod:`.maskout`                Figs. 1 / 5 (+ supp. Figs. 1-2): mask-out       ``stl fig1``, ``stl fig5``
                               seen through the network's layers
:mod:`.fig4`                   Fig. 4, cross-dataset generalisation            ``stl fig4``
:mod:`.gallery`                supp. Table 1, top-1 boxes                      ``stl gallery``
:mod:`.ablation`               the s_drop ablation and the other switches      ``stl ablation``
:mod:`.timing`                 seconds and network evaluations per image       ``stl timing``
:mod:`.wsol`                   STL vs CAM / Grad-CAM / RISE, WSOL metrics      ``stl wsol``
                               (:func:`~.wsol.run_wsol`)
:mod:`.bench_scale`            local executor vs Ray workers                   ``stl bench-scale``
:mod:`.eval_profiles`          each evaluation-protocol field on stored runs   ``stl eval-profiles``
:mod:`.common`                 what the figure commands share: data, stored    --
                               runs, the lazily built classifier, writers
=============================  ==============================================  ==========================
"""
