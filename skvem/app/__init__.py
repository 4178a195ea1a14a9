"""The application on top of the library: the ``skvem`` command and its jobs.

Nothing in :mod:`skvem`'s library modules imports from here.
"""
