"""The simulated kernel: Python models of the Linux mm code that KSM reproducers exercise.

One module per kernel file (``ksm.py`` <-> mm/ksm.c, ``vmscan.py`` <-> mm/vmscan.c, ...).
Reference version: v7.0-rc6 (mm/ksm.c read at ~v6.12 plus the changes listed in
docs/kernel-map.md); behaviour models move the switches in ``ksmrepro.models``.

Departures from the kernel are tagged in comments, greppable:

* ``STUB:``     kernel behaviour that is a no-op here;
* ``CUSTOM:``   simplified or changed;
* ``SIM-ONLY:`` state the kernel does not have (bookkeeping for the simulation).

This package imports only the standard library and ``ksmrepro.errors``.
"""
