"""Scale-out: a family's checkpoint x task grid as immutable jobs on this machine's worker processes,
a Ray cluster or a SLURM cluster (docs/scale-out.md). See :mod:`capcast.executors.base`."""
