"""Workloads: query sizes, arrivals, sparse ids, sample libraries, the Criteo reader (SPEC §4)."""
