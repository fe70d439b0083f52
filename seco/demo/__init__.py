"""``make demo`` / ``seco demo``: the whole system offline, from a simulated scene archive to a linear probe.

1. archive: :func:`seco.synth.archive.make_archive` writes a seeded COG + STAC archive (3 UTM zones x 5 dates x
   3 passes 5 days apart, with clouds, swath edges and a few broken assets) and its stac-geoparquet index
   (:mod:`seco.demo.archive`);
2. sample: the SeCo sampler (Gaussian around "cities") with the archive's tile centres as the cities, and the
   date windows pinned to the archive's dates (:mod:`seco.demo.collect`);
3. collect: :mod:`seco.collect.pipeline` on the local stac-geoparquet catalog with a thread pool, into a store
   (rejected locations replaced by spares, failures recorded; :mod:`seco.demo.collect`);
4. SeCo pre-training on the collected store (a wall-clock budget), 5. export (:mod:`seco.demo.pretrain`);
6. a linear probe on land-cover labels, SeCo against a random-init backbone. The collected store has no labels,
   so the probe runs on a labelled store of the same simulator (:func:`seco.synth.make_store`;
   :mod:`seco.demo.probe`);
7. downstream evaluation (:mod:`seco.demo.evaluate`); every backbone normalised with the evaluation data's own
   statistics (one policy, see docs/FIDELITY.md);
8. ``report.md`` (sections: :mod:`seco.demo.report`, plots: :mod:`seco.demo.plots`) with every number taken
   from the run.

:func:`run_demo` (:mod:`seco.demo.run`) runs them in order; :data:`QUICK` holds its sizes for a first look.
"""

from seco.demo.run import QUICK, run_demo

__all__ = ["QUICK", "run_demo"]
