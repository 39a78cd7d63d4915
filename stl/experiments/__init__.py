"""Experiment logic behind the paper's figures and tables that are not Fig. 3 / Tables 1-2 /
Fig. 6 (those live in ``experiments/``).

Each module exposes plain functions that return the numbers and write PNG + PDF figures and
CSV / Markdown tables; the ``stl <name>`` subcommands in :mod:`stl.commands` are thin wrappers.

* :mod:`.fig2`      -- Fig. 2, the s_drop surface of Eq. 4.
* :mod:`.maskout`   -- Fig. 1 / Fig. 5 (and supplementary Figs. 1-2): the mask-out operation
  seen through the network's layers.
* :mod:`.fig4`      -- Fig. 4, cross-dataset generalisation (PASCAL vs ILSVRC class prototypes).
* :mod:`.gallery`   -- supplementary Table 1, top-1 boxes of STL-CL and SELSEARCH.
* :mod:`.ablation`  -- the s_drop ablation of Sec. 4 and the other switches of the config.
* :mod:`.timing`    -- the timing claim of Sec. 4 (seconds and network evaluations per image).
"""
