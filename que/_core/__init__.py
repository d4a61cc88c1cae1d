"""que's core, private: the facade, configuration, enqueueing, running jobs, the
registry of job classes, the driver boundary (``db``), every SQL statement
(``sql``), the schema's facts (``schema``) and its versions (``migrations``).

Nothing here imports the worker pool, the ``que`` command or ``que_testing``;
users import from :mod:`que` (and :mod:`que.worker`) instead.
"""
