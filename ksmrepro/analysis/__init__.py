"""Questions asked of several runs: *what does this patch change?*

- :mod:`~ksmrepro.analysis.outcome`: what a run says about a model (expectations held or
  not, a chosen observation, or "cannot run here": git bisect's *skip*)
- :mod:`~ksmrepro.analysis.parallel`: running (scenario, model) pairs in worker processes,
  results identical to serial runs
- :mod:`~ksmrepro.analysis.compare`: one scenario on several models, observation by
  observation, and :mod:`~ksmrepro.analysis.tracediff`: where their kernel traces part
- :mod:`~ksmrepro.analysis.bisect`: the first patch of a series that changes the outcome
- :mod:`~ksmrepro.analysis.render`: rich renderables for the above (the CLI prints them)

Everything here returns data (or renderables); nothing prints or exits.
"""
